"""Text that reaches the status page, feeds and mail: no control characters. XML 1.0 (the
Atom feed) cannot carry them, and nothing a writer means needs them.

`validate_text` refuses them where text enters (the API's serializers, the admin's forms,
notice variables); `strip_control` removes them on the way out, as a second line of
defence against a row that was written some other way."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from portal.strict import UNPRINTABLE, text_problem


def has_control(value: object) -> bool:
    return isinstance(value, str) and UNPRINTABLE.search(value) is not None


def validate_text(value: Any) -> None:
    """A Django validator, with the API's own rule and words (portal.strict): DRF fields
    and form fields both take it."""
    problem = text_problem(value, controls=True) if isinstance(value, str) else None
    if problem:
        raise ValidationError(f"Text {problem}.", code="control_character")


def strip_control(value: str) -> str:
    return UNPRINTABLE.sub("", value)


class CleanTextForm(forms.ModelForm):
    """An admin form whose every text field refuses control characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators = [*field.validators, validate_text]
