"""Every phase ends in a decision: the issue's synthetic canaries at 1% (+1 point of
errors, p95 30% over stable, 0.8% errors, no latency histogram) are paused at their
phase's deadline, never left running and never advanced; each pause says why, is audited
and alerted to whoever owns the metric. Time moves with time_machine at exact boundaries."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.core import mail

from comms.models import Notification
from governance.models import AuditEvent, Release
from rollouts import engine, lifecycle
from rollouts.choices import PauseKind
from rollouts.models import AlertRoute, MetricSample, Plan, Rollout
from tests.conftest import logged_in
from tests.rollouts.conftest import T0, at, feed
from tests.servers import closed_port

pytestmark = pytest.mark.django_db

ONCALL, FINANCE = "oncall@codexdominion.app", "fiona@codexdominion.app"
STABLE_LATENCY = {"le": [100, 200, "+Inf"], "counts": [0, 100, 0]}  # p95 195 ms
SLOWER_BY_30 = {"le": [100, 262, "+Inf"], "counts": [0, 100, 0]}  # p95 253.9 ms


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rollout(
    approved: Callable[..., Release], team: dict[str, Any], settings: Any, clock: Any
) -> Rollout:
    settings.ALERT_EMAILS = [ONCALL]
    team["fiona"].email = FINANCE
    team["fiona"].save()
    return lifecycle.rollout_start(release=approved(), actor=team["erin"])


@pytest.fixture
def client_for(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]):
    return lambda name, *scopes: api(token_for(team[name], *scopes))


def traffic(*, errors_per_mille: int = 0, latency: dict | None = None, **extra: Any) -> None:
    """Stable at 0.3% errors for two hours around the start; the canary at 1%'s share
    (1000 requests per 10 s is plenty) with the errors and latency given."""
    feed("backend", "v2.0.3", "stable", at(-3600), 3 * 3600, requests=99_000, errors=297,
         latency=STABLE_LATENCY)  # fmt: skip
    feed("backend", "v2.1.0", "canary", at(0), 2 * 3600, requests=1000, errors=errors_per_mille,
         latency=latency or STABLE_LATENCY, **extra)  # fmt: skip


def tick_at(clock: Any, rollout: Rollout, offset: float) -> Rollout:
    clock.move_to(at(offset))
    engine.tick()
    rollout.refresh_from_db()
    return rollout


def paused_events(rollout: Rollout) -> list[dict[str, Any]]:
    return [e.data for e in AuditEvent.objects.filter(action="rollout.paused")]


def test_a_failing_validation_is_paused_exactly_at_the_deadline_and_says_why(
    rollout: Rollout, team: dict[str, Any], clock: Any, client_for: Callable[..., Any]
) -> None:
    traffic(errors_per_mille=8)  # 0.8% errors
    tick_at(clock, rollout, 599)
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("running", 0, 1)
    assert paused_events(rollout) == [] and mail.outbox == []
    tick_at(clock, rollout, 600)
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("paused", 0, 1)
    assert rollout.last_analysis["verdict"] == "failing"
    detail = "error rate 0.80% is over the 0.50% limit"
    body = client_for("fiona", "read").get(f"/api/v1/rollouts/{rollout.pk}/").json()
    assert body["pause_reason"] == {
        "kind": "validation_failed",
        "detail": detail,
        "at": "2026-11-26T14:10:00Z",
    }
    [event] = paused_events(rollout)
    assert (event["kind"], event["reason"], event["alerted"]) == (
        "validation_failed",
        detail,
        ["on_call"],
    )
    [alert] = mail.outbox
    assert alert.to == [ONCALL] and detail in alert.subject
    html = logged_in(team["sam"]).get(f"/rollouts/{rollout.pk}/dashboard/").content.decode()
    assert 'id="pause-reason" data-kind="validation_failed"' in html and detail in html
    # Decided once: later ticks leave it paused, with no second event or alert.
    tick_at(clock, rollout, 700)
    assert rollout.state == "paused" and len(paused_events(rollout)) == 1 and len(mail.outbox) == 1


def test_resuming_gives_the_phase_a_fresh_full_deadline(
    rollout: Rollout, team: dict[str, Any], clock: Any
) -> None:
    traffic(errors_per_mille=8)
    tick_at(clock, rollout, 600)
    clock.move_to(at(1000))
    lifecycle.rollout_resume(rollout=rollout, actor=team["sam"])
    rollout.refresh_from_db()
    assert (rollout.state, rollout.phase_ends_at, rollout.pause_kind) == ("running", at(1600), "")
    assert tick_at(clock, rollout, 1599).state == "running"
    assert tick_at(clock, rollout, 1600).state == "paused"  # still failing: decided again
    assert rollout.paused_at == at(1600) and len(paused_events(rollout)) == 2


@pytest.mark.parametrize(
    ("canary", "detail"),
    [
        ({"errors_per_mille": 13}, "error rate 1.30% is over the 0.50% limit"),  # +1 point
        ({"latency": SLOWER_BY_30}, "p95 254 ms is 30% over stable (budget 10%)"),
    ],
    ids=["one_point_more_errors", "p95_30_percent_over_stable"],
)
def test_the_issues_canaries_are_paused_at_1_percent(
    rollout: Rollout, clock: Any, canary: dict[str, Any], detail: str
) -> None:
    traffic(**canary)
    tick_at(clock, rollout, 599)
    assert rollout.state == "running"
    tick_at(clock, rollout, 600)
    assert (rollout.state, rollout.weight, rollout.pause_kind) == ("paused", 1, "validation_failed")
    assert rollout.pause_detail == detail
    for offset in (1200, 2400, 4000):
        assert tick_at(clock, rollout, offset).phase_index == 0


def test_a_plan_may_roll_back_a_failed_validation_instead(rollout: Rollout, clock: Any) -> None:
    Plan.objects.filter(name="standard").update(on_failed_validation="rollback")
    traffic(errors_per_mille=8)
    tick_at(clock, rollout, 599)
    assert rollout.state == "running"
    tick_at(clock, rollout, 600)
    assert rollout.state in ("rolling_back", "rolled_back")
    assert rollout.rollback.trigger == "validation failed"
    assert rollout.rollback.reason == (
        "Validation failed at the phase's deadline: error rate 0.80% is over the 0.50% limit"
    )
    assert rollout.phases.get(index=0).verdict == "failed"


def test_a_canary_without_a_latency_histogram_is_inconclusive_then_paused(
    rollout: Rollout, clock: Any
) -> None:
    traffic()
    MetricSample.objects.filter(variant="canary").update(latency_le=None, latency_counts=None)
    tick_at(clock, rollout, 600)
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("running", 0, 1)
    assert rollout.last_analysis["verdict"] == "inconclusive"
    assert rollout.last_analysis["reason"] == "no data: p95_ms"
    assert rollout.last_analysis["inputs"]["gates"]["p95_ms"]["ok"] is False
    assert rollout.phases.get(index=0).extended and rollout.phase_ends_at == at(1200)
    assert AuditEvent.objects.filter(action="rollout.phase_extended").count() == 1
    tick_at(clock, rollout, 1199)
    assert (rollout.state, rollout.phase_index) == ("running", 0)
    tick_at(clock, rollout, 1200)
    assert (rollout.state, rollout.phase_index, rollout.weight) == ("paused", 0, 1)
    assert rollout.pause_kind == "inconclusive"
    assert rollout.pause_detail == (
        "no p95: the canary reported no latency histogram, after one extension"
    )
    [alert] = mail.outbox
    assert alert.to == [ONCALL]


def test_a_pausing_rule_alerts_finance_for_payments_and_on_call_for_latency(
    rollout: Rollout, clock: Any
) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(phase_ends_at=at(86_400))  # rules alone
    failing_payments = {"business": {"payments_attempted": 100, "payments_failed": 5}}
    traffic(**failing_payments)
    tick_at(clock, rollout, 60)
    tick_at(clock, rollout, 659)
    assert rollout.state == "running"
    tick_at(clock, rollout, 660)
    assert (rollout.state, rollout.pause_kind) == ("paused", "rule")
    assert rollout.pause_detail.startswith(
        "Rule payment_failures: payment_failure_rate 0.05 > 0.01"
    )
    [alert] = mail.outbox
    assert alert.to == [FINANCE]
    assert "@payments-team, @council-stewards" in alert.body
    note = Notification.objects.get(user__username="fiona")
    assert "paused at 1% (rule)" in note.title
    assert paused_events(rollout)[0]["alerted"] == ["finance"]


def test_alert_routes_are_data(rollout: Rollout, clock: Any) -> None:
    AlertRoute.objects.filter(metric="p95_ms").update(audience="finance")
    traffic(latency=SLOWER_BY_30)
    tick_at(clock, rollout, 600)
    assert rollout.pause_kind == "validation_failed"
    [alert] = mail.outbox
    assert alert.to == [FINANCE]


@pytest.fixture
def source(settings: Any) -> Iterator[Callable[[bool], None]]:
    """A metrics source reached over TCP: up while its address has a listener."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    up, down = f"127.0.0.1:{listener.getsockname()[1]}", f"127.0.0.1:{closed_port()}"
    settings.CANARY_METRICS_SOURCE = "tests.rollouts.sources.RemoteStore"

    def answering(yes: bool) -> None:
        settings.CANARY_TEST_SOURCE = up if yes else down

    answering(True)
    yield answering
    listener.close()


def test_a_source_unreachable_for_the_longest_rule_duration_pauses(
    rollout: Rollout, clock: Any, source: Callable[[bool], None]
) -> None:
    traffic()
    source(False)
    tick_at(clock, rollout, 60)
    assert rollout.metrics_down_since == at(60)
    assert {r["state"] for r in rollout.last_analysis["rules"]} == {"no_data"}
    tick_at(clock, rollout, 600)  # the phase's deadline: inconclusive, extended once
    assert (rollout.state, rollout.phase_ends_at) == ("running", at(1200))
    assert rollout.last_analysis["reason"].startswith("metrics source unavailable: Connection")
    tick_at(clock, rollout, 959)  # conversion_drop's 15 minutes are the longest
    assert rollout.state == "running"
    tick_at(clock, rollout, 960)
    assert (rollout.state, rollout.pause_kind) == ("paused", PauseKind.METRICS_UNAVAILABLE)
    assert rollout.pause_detail.startswith(
        "the metrics source has been unreachable since 2026-11-26T14:01:00Z "
        "(900 s, the longest rule duration): ConnectionRefusedError"
    )
    [alert] = mail.outbox
    assert alert.to == [ONCALL]


def test_a_source_that_answers_again_restarts_the_clock(
    rollout: Rollout, clock: Any, source: Callable[[bool], None]
) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(phase_ends_at=at(86_400))  # the source alone
    traffic()
    source(False)
    tick_at(clock, rollout, 60)
    source(True)
    assert tick_at(clock, rollout, 900).metrics_down_since is None
    source(False)
    tick_at(clock, rollout, 960)
    assert (rollout.state, rollout.metrics_down_since) == ("running", at(960))
    tick_at(clock, rollout, 1859)
    assert rollout.state == "running"
    assert tick_at(clock, rollout, 1860).pause_kind == "metrics_unavailable"


def test_every_pause_kind_reads_the_same_in_the_api(
    rollout: Rollout, team: dict[str, Any], client_for: Callable[..., Any]
) -> None:
    reader = client_for("fiona", "read")
    assert reader.get(f"/api/v1/rollouts/{rollout.pk}/").json()["pause_reason"] is None
    for kind in PauseKind.values:
        Rollout.objects.filter(pk=rollout.pk).update(state="running")
        rollout.refresh_from_db()
        lifecycle.pause(rollout, kind, f"held: {kind}")
        body = reader.get(f"/api/v1/rollouts/{rollout.pk}/").json()
        assert body["pause_reason"] == {
            "kind": kind,
            "detail": f"held: {kind}",
            "at": "2026-11-26T14:00:00Z",
        }
    lifecycle.rollout_resume(rollout=rollout, actor=team["sam"])
    assert reader.get(f"/api/v1/rollouts/{rollout.pk}/").json()["pause_reason"] is None
    lifecycle.rollout_pause(rollout=rollout, actor=team["sam"])
    reason = reader.get(f"/api/v1/rollouts/{rollout.pk}/").json()["pause_reason"]
    assert (reason["kind"], reason["detail"]) == ("manual", "paused by sam")
