"""The OpenAPI schema against the live API: schemathesis generates requests for every
operation (valid and invalid) and checks every answer against the schema, through a real
gunicorn server with a token holding every scope and every role. Path parameters name
objects that exist (a deployed release, its rollout, an incident, a component, a
notification), so the operations are exercised beyond their 404."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from comms.models import Component, Notification
from governance.choices import ALL_ROLES, Scope
from governance.models import Release
from governance.services import vote_cast
from governance.tokens import token_issue
from tests.conftest import ARTIFACTS, gunicorn

# The API in three parts of similar size, each run by its own schemathesis process.
_SPLIT = "^/api/v1/releases|^/api/v1/rollouts|^/ops/"
PARTS = (
    ("--include-path-regex", "^/api/v1/releases"),
    ("--include-path-regex", "^/api/v1/rollouts|^/ops/"),
    ("--exclude-path-regex", _SPLIT),
)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


def existing_objects(
    root: Any,
    token: str,
    new_release: Callable[..., Release],
    sign_all: Callable[[Release], None],
    team: dict[str, Any],
) -> list[tuple[str, ...]]:
    """One object of each kind the paths name: (path pattern, parameter, value), and for a
    checklist item its key too."""
    release = new_release()
    sign_all(release)
    for voter in ("carol", "dave")[: release.approvals_required]:
        vote_cast(release=release, voter=team[voter], decision="approve", comment="ok")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    deployed = client.post(f"/api/v1/releases/{release.pk}/deploy/", {}, format="json")
    assert deployed.status_code == 201, deployed.json()
    incident = client.post(
        "/api/v1/incidents/", {"name": "Slow checkout", "body": "Looking."}, format="json"
    )
    assert incident.status_code == 201, incident.json()
    note = Notification.objects.create(user=root, title="Hello", body="A note.")
    component = Component.objects.filter(is_group=False).first()
    assert component is not None
    return [
        (r"/api/v1/releases/\{id\}/checklist/", "path.id", str(release.pk), "ci_tests"),
        (r"/api/v1/releases/\{id\}", "path.id", str(release.pk)),
        (r"/api/v1/rollouts/\{id\}", "path.id", str(deployed.json()["id"])),
        (r"/api/v1/incidents/\{code\}", "path.code", incident.json()["id"]),
        (r"/api/v1/components/\{code\}", "path.code", component.code),
        (r"/api/v1/notifications/\{id\}", "path.id", str(note.pk)),
        ("/ops/canary/metrics", "query.version", release.version),
    ]


def config_file(directory: Path, objects: list[tuple[str, ...]]) -> Path:
    """tests/portal/schemathesis.toml, plus the path parameters of each kind of object
    (the first entry that matches an operation gives its parameters)."""
    text = Path(__file__).with_name("schemathesis.toml").read_text()
    for pattern, parameter, value, *key in objects:
        literal = value if value.isdigit() else f'"{value}"'
        extra = f', "path.key" = "{key[0]}"' if key else ""
        text += (
            f"\n[[operations]]\ninclude-path-regex = '^{pattern}'\n"
            f'parameters = {{ "{parameter}" = {literal}{extra} }}\n'
        )
    path = directory / "schemathesis.toml"
    path.write_text(text)
    return path


@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_as_the_schema_says(
    make_member: Callable[..., Any],
    new_release: Callable[..., Release],
    sign_all: Callable[[Release], None],
    team: dict[str, Any],
    tmp_path: Path,
) -> None:
    root = make_member("root", *ALL_ROLES)
    _, token = token_issue(user=root, scopes=list(Scope.values))
    config = config_file(tmp_path, existing_objects(root, token, new_release, sign_all, team))
    command = [
        *(str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run"),
        *("--checks", ",".join(CHECKS), "--header", f"Authorization: Bearer {token}"),
        *("--phases", "examples,coverage,fuzzing", "--max-examples", "5", "--seed", "11"),
        *("--workers", "1", "--generation-database", "none", "--request-timeout", "30"),
        *("--no-color", "--report", "junit"),
    ]
    reports = ARTIFACTS / "schemathesis"
    with gunicorn(workers=3) as (url, _):
        target = ("--url", url, f"{url}/api/schema/?format=json")
        started = time.monotonic()
        # One process per part of the API, side by side: schemathesis's own worker threads
        # share a parser cache that is not thread-safe on this Python.
        runs = [
            subprocess.Popen(
                [*command, *part, "--report-dir", str(reports / str(n)), *target],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,  # where schemathesis keeps its cache
            )
            for n, part in enumerate(PARTS)
        ]
        try:
            outputs = [run.communicate(timeout=300)[0] for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
        took = time.monotonic() - started
    tested = 0
    for run, output in zip(runs, outputs, strict=True):
        summary = output[output.find("=== SUMMARY") :]
        assert run.returncode == 0, output[-20_000:]
        found = re.search(r"Tested: (\d+)", summary)
        assert found, summary
        tested += int(found.group(1))
    assert tested == len(operations()), outputs
    print(f"schemathesis took {took:.1f} s for {tested} operations")


def operations() -> list[str]:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    return [f"{m} {p}" for p, item in schema["paths"].items() for m in item if m != "parameters"]
