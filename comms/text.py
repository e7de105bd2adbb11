"""Text that reaches the status page, feeds and mail: no control characters. XML 1.0 (the
Atom feed) cannot carry them, and nothing a writer means needs them.

`validate_text` refuses them where text enters (the API's serializers, the admin's forms,
notice variables); `strip_control` removes them on the way out, as a second line of
defence against a row that was written some other way."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# C0 controls except tab, line feed and carriage return; DEL and the C1 controls; lone
# surrogates (which no UTF-8 file can hold).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MESSAGE = "Control characters are not allowed (line breaks and tabs are)."


def has_control(value: object) -> bool:
    return isinstance(value, str) and CONTROL.search(value) is not None


def validate_text(value: Any) -> None:
    """A Django validator: DRF fields and form fields both take it."""
    if has_control(value):
        raise ValidationError(MESSAGE, code="control_character")


def strip_control(value: str) -> str:
    return CONTROL.sub("", value)


class CleanTextForm(forms.ModelForm):
    """An admin form whose every text field refuses control characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators = [*field.validators, validate_text]
