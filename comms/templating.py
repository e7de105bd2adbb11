"""The guide's `[PLACEHOLDER]` templates: filled from variables, nothing else. No template
language, so nothing in a template can execute; values are escaped for HTML channels."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.utils.html import escape

from comms.text import has_control
from portal.errors import Invalid

PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*)\]")


def placeholders(*texts: str) -> set[str]:
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def check_variables(texts: tuple[str, ...], variables: Mapping[str, object]) -> dict[str, str]:
    """Refuse unknown and missing placeholders, values that are not text and text with
    control characters, naming every one; return text values."""
    wanted = placeholders(*texts)
    unknown = sorted(set(variables) - wanted)
    missing = sorted(wanted - set(variables))
    bad = sorted(
        k
        for k, v in variables.items()
        if not isinstance(v, str | int | float) or isinstance(v, bool)
    )
    control = sorted(k for k, v in variables.items() if has_control(v))
    problems = []
    if missing:
        problems.append(f"missing placeholder(s): {', '.join(f'[{n}]' for n in missing)}")
    if unknown:
        problems.append(f"unknown placeholder(s): {', '.join(f'[{n}]' for n in unknown)}")
    if bad:
        problems.append(f"not text: {', '.join(bad)}")
    if control:
        problems.append(f"control characters in: {', '.join(control)}")
    if problems:
        message = "; ".join(problems)
        raise Invalid(message[0].upper() + message[1:] + ".", errors={"variables": problems})
    return {key: str(value) for key, value in variables.items()}


def render(text: str, variables: Mapping[str, str], *, html: bool = False) -> str:
    return PLACEHOLDER.sub(
        lambda match: escape(variables[match.group(1)]) if html else variables[match.group(1)],
        text,
    )
