"""Strict input: the rules every value sent to the API passes before any view sees it.

The JSON parser (`portal.parsers`) applies the rules that hold for any body (text without
NUL or unpaired surrogates, integers that fit 64 bits, bounded nesting); `StrictSerializer`
adds the declared fields' types, without DRF's coercions: a boolean is `true` or `false`,
an integer is a JSON integer, text is a JSON string, a time exists and has a zone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 32

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
# What no text a person writes needs, and XML (the Atom feed, the mails) cannot carry or
# should not: C0 controls but tab, LF and CR; DEL and the C1 controls; unpaired
# surrogates; the two non-characters U+FFFE and U+FFFF.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def text_problem(value: str, *, controls: bool = False) -> str | None:
    """Why `value` cannot be stored as text (NUL, an unpaired surrogate, and with
    `controls` any control character but tab and line breaks), or None."""
    found = (UNPRINTABLE if controls else _NUL_OR_SURROGATE).search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return "contains an unpaired surrogate"
    return f"contains the control character U+{ord(char):04X}"


def aware_datetime(value: Any) -> datetime:
    """An ISO 8601 time with a zone that exists and has a UTC equivalent, or ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with a zone")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a valid ISO 8601 time (does that date exist?)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must be an ISO 8601 time with a zone")
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    return parsed


def _bounds(field: serializers.IntegerField) -> tuple[int, int]:
    low = field.min_value if field.min_value is not None else INT64_MIN
    high = field.max_value if field.max_value is not None else INT64_MAX
    return max(int(low), INT64_MIN), min(int(high), INT64_MAX)


def _scalar(field: serializers.Field, value: Any) -> list[str] | None:
    """Errors for a value of a field that holds one JSON scalar."""
    if isinstance(field, serializers.BooleanField):
        return None if type(value) is bool else ["Must be true or false."]
    if isinstance(field, serializers.IntegerField):
        if type(value) is not int:
            return ["Must be a whole number."]
        low, high = _bounds(field)
        return None if low <= value <= high else [f"Must be between {low} and {high}."]
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        if type(value) not in (int, float) or not math.isfinite(value):
            return ["Must be a number."]
        return None
    if isinstance(field, serializers.DateTimeField):
        try:
            aware_datetime(value)
        except ValueError as bad:
            return [f"Time {bad}."]
        return None
    if isinstance(field, serializers.ChoiceField):
        kinds = {type(key) for key in field.choices}
        if type(value) not in kinds:
            return [f"Must be one of {', '.join(map(str, field.choices))}."]
        return None
    if isinstance(field, serializers.CharField | serializers.DateField | serializers.TimeField):
        if not isinstance(value, str):
            return ["Must be a string."]
        problem = text_problem(value, controls=True)
        return [f"Text {problem}."] if problem else None
    return None


def field_errors(field: serializers.Field, value: Any) -> Any:
    """None when `value` has the JSON shape and types `field` declares, else its errors
    in DRF's shape (a list, or a dict by field name / index for containers)."""
    if value is None or field.read_only:
        return None  # whether null is allowed is the field's own check
    if isinstance(field, serializers.ListSerializer | serializers.ListField):
        if not isinstance(value, list):
            return ["Must be a list."]
        child = field.child
        if child is None:
            return None
        errors = {str(i): e for i, item in enumerate(value) if (e := field_errors(child, item))}
        return errors or None
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, Mapping):
            return ["Must be an object."]
        return _object_errors(field, value) or None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, Mapping):
            return ["Must be an object."]
        errors = {}
        for key, item in value.items():
            problem = text_problem(key, controls=True)
            found = [f"Key {problem}."] if problem else field_errors(field.child, item)
            if found:
                errors[key] = found
        return errors or None
    if isinstance(field, serializers.MultipleChoiceField):
        if not isinstance(value, list):
            return ["Must be a list."]
        return None
    return _scalar(field, value)


def _object_errors(serializer: serializers.Serializer, data: Mapping) -> dict[str, Any]:
    fields = serializer.fields
    errors: dict[str, Any] = {}
    if isinstance(serializer, StrictSerializer):
        errors.update({name: ["Unknown field."] for name in sorted(set(data) - set(fields))})
    for name, field in fields.items():
        if name in data and (found := field_errors(field, data[name])):
            errors[name] = found
    return errors


class StrictSerializer(serializers.Serializer):
    """The base of every request body: refuses fields it does not know, and values whose
    JSON type is not the declared field's (no DRF coercion of "yes", 1 or "12")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        errors = _object_errors(self, data)
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
