"""Domain refusals, raised by services and turned into HTTP answers by the API layer
(and into messages by the admin)."""

from __future__ import annotations


class Refused(Exception):
    status = 400

    def __init__(
        self, detail: str, *, blocking: list[str] | None = None, errors: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.blocking = blocking
        self.errors = errors


class Invalid(Refused):
    status = 400


class NotAllowed(Refused):
    status = 403


class NotFound(Refused):
    status = 404


class Conflict(Refused):
    status = 409
