"""Typed readers for environment variables: a bad value stops the process at start."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or the contents of the file named by NAME_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_float(
    name: str, default: float, *, above: float | None = None, at_most: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={raw!r} must be a finite number.")
    if above is not None and value <= above:
        raise ImproperlyConfigured(f"{name}={value} must be greater than {above}.")
    if at_most is not None and value > at_most:
        raise ImproperlyConfigured(f"{name}={value} must be at most {at_most}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_ports(name: str, default: list[int]) -> list[int]:
    """Comma-separated TCP ports, exactly as many as the default has, all different."""
    raw = env_list(name, [str(port) for port in default])
    try:
        ports = [int(item) for item in raw]
    except ValueError:
        raise ImproperlyConfigured(f"{name}={','.join(raw)!r}: give whole port numbers.") from None
    if len(ports) != len(default) or len(set(ports)) != len(ports):
        raise ImproperlyConfigured(f"{name} needs {len(default)} different ports, comma-separated.")
    if not all(0 < port < 65536 for port in ports):
        raise ImproperlyConfigured(f"{name}: a port is between 1 and 65535.")
    return ports
