"""The OpenAPI schema against the live API: schemathesis generates requests for every
operation (valid and invalid) and checks every answer against the schema, through a real
gunicorn server with a token holding every scope and every role."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from governance.choices import ALL_ROLES, Scope
from governance.tokens import token_issue
from tests.conftest import ARTIFACTS, gunicorn

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_as_the_schema_says(make_member: Callable[..., Any]) -> None:
    root = make_member("root", *ALL_ROLES)
    _, token = token_issue(user=root, scopes=list(Scope.values))
    report = ARTIFACTS / "schemathesis"
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        "--checks",
        ",".join(CHECKS),
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "5",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "4",
        "--seed",
        "11",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    with gunicorn(workers=3) as (url, _):
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--url", url, f"{url}/api/schema/?format=json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        took = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout
    print(f"schemathesis: {took:.1f} s\n{result.stdout[-3000:]}")
