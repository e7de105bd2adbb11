"""The `canary` console script against a live server."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from governance.models import Release
from governance.tokens import token_issue
from rollouts import engine, lifecycle
from rollouts.models import Rollout, TrafficSplit
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)
CANARY = str(ROOT / ".venv" / "bin" / "canary")


def canary(live_server: Any, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CANARY,
            "--url",
            live_server.url,
            "--token",
            token,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_deploy_monitor_promote(
    live_server: Any, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    approved()  # backend v2.1.0, gate open
    _, erin = token_issue(user=team["erin"], scopes=["releases:write", "canary:operate", "read"])
    result = canary(live_server, erin, "deploy", "--version", "v2.1.0", "--tier", "medium")
    assert result.returncode == 0, result.stderr
    assert "running at 1%" in result.stdout
    rollout = Rollout.objects.get(version="v2.1.0")

    _, sam = token_issue(user=team["sam"], scopes=["canary:operate", "read"])
    paused = canary(live_server, sam, "pause", "--version", "v2.1.0", "--reason", "lunch")
    assert paused.returncode == 0 and "paused" in paused.stdout
    assert canary(live_server, sam, "pause", "--version", "v2.1.0").returncode == 1
    assert "running" in canary(live_server, sam, "resume", "--version", "v2.1.0").stdout
    _, carol = token_issue(user=team["carol"], scopes=["canary:operate", "read"])
    promote = ("promote", "--version", "v2.1.0", "--manual")
    result = canary(live_server, carol, *promote)
    assert result.returncode == 0, result.stderr
    assert "running at 5%" in result.stdout  # the next phase
    rollout.refresh_from_db()
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("running", 1, 5)
    # --approver: the full promotion waits for that member, and only them.
    asked = canary(live_server, carol, *promote, "--approver", "@dave")
    assert asked.returncode == 0, asked.stderr
    assert "asked by carol, awaiting dave until" in words(asked.stdout)
    rollout.refresh_from_db()
    assert (rollout.state, rollout.weight) == ("running", 5)
    refused = canary(live_server, sam, *promote, "--full")
    assert refused.returncode == 1
    assert "awaits dave, not sam" in words(refused.stderr)
    _, dave = token_issue(user=team["dave"], scopes=["canary:operate", "read"])
    done = canary(live_server, dave, *promote, "--approver", "@dave")
    assert done.returncode == 0, done.stderr
    assert "promoted" in done.stdout
    rollout.refresh_from_db()
    assert (rollout.state, rollout.weight) == ("promoted", 100)
    result = canary(live_server, carol, "monitor", "--version", "v2.1.0", "--interval", "0.2")
    assert result.returncode == 0
    assert "promoted" in result.stdout


def words(text: str) -> str:
    """The output with its line wrapping undone."""
    return " ".join(text.split())


def test_an_approver_is_a_member_who_may_confirm_never_a_dropped_label(
    live_server: Any, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    lifecycle.rollout_start(release=approved(), actor=team["erin"])
    _, carol = token_issue(user=team["carol"], scopes=["canary:operate", "read"])
    promote = ("promote", "--version", "v2.1.0")
    usage = canary(live_server, carol, *promote, "--auto", "--approver", "@dave")
    assert usage.returncode == 2 and "manual" in words(usage.stderr)
    unknown = canary(live_server, carol, *promote, "--manual", "--approver", "@jermaineMerritt")
    assert unknown.returncode == 1
    assert "jermaineMerritt is not a council member or steward" in words(unknown.stderr)
    author = canary(live_server, carol, *promote, "--manual", "--approver", "@erin")
    assert author.returncode == 1 and "erin is not a council member" in words(author.stderr)
    rollout = Rollout.objects.get(version="v2.1.0")
    assert (rollout.state, rollout.weight, rollout.full_promotions.count()) == ("running", 1, 0)


def test_monitor_follows_a_rollback_live_and_exits_non_zero(
    live_server: Any, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    _, reader = token_issue(user=team["sam"], scopes=["read"])

    def abort_soon() -> None:
        time.sleep(1.0)
        try:
            lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="errors up")
            engine.rollback_continue(rollout.pk)
        finally:
            connection.close()

    threading.Thread(target=abort_soon).start()
    result = canary(
        live_server,
        reader,
        "monitor",
        "--version",
        "v2.1.0",
        "--interval",
        "0.2",
        "--timeout",
        "30",
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "rolled_back" in result.stdout and "errors up" in result.stdout


def test_abort_is_the_kill_switch_and_refusals_exit_1(
    live_server: Any, approved: Callable[..., Release], team: dict[str, Any]
) -> None:
    lifecycle.rollout_start(release=approved(), actor=team["erin"])
    _, engineer = token_issue(user=team["erin"], scopes=["canary:abort"])
    refused = canary(live_server, engineer, "abort", "--version", "v2.1.0", "--reason", "x")
    assert refused.returncode == 1 and "403" in refused.stderr
    _, ops = token_issue(user=team["oscar"], scopes=["canary:abort"])
    result = canary(live_server, ops, "abort", "--version", "v2.1.0", "--reason", "High error rate")
    assert result.returncode == 0, result.stderr
    assert TrafficSplit.objects.get(service="backend").weight == 0
    again = canary(live_server, ops, "abort", "--version", "v9.9.9", "--reason", "x")
    assert again.returncode == 1 and "404" in again.stderr


def test_a_closed_gate_prints_why_and_usage_errors_exit_2(
    live_server: Any, team: dict[str, Any]
) -> None:
    _, erin = token_issue(user=team["erin"], scopes=["releases:write", "canary:operate", "read"])
    result = canary(live_server, erin, "deploy", "--version", "v3.0.0", "--tier", "low")
    assert result.returncode == 1
    assert "CI tests pass: pending" in result.stderr
    assert canary(live_server, erin, "deploy", "--version", "v3").returncode == 2
    assert canary(live_server, "", "monitor", "--version", "v3").returncode == 2
