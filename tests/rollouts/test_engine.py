"""The engine through whole plans, moved with time_machine at exact boundaries."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine

from governance.models import AuditEvent, Release
from portal.errors import Conflict, Invalid
from rollouts import engine, followups, lifecycle, promotion
from rollouts.models import PostRollbackAction, Rollout, ServiceHooks, TrafficSplit
from rollouts.routing import decide
from tests.rollouts.conftest import T0, at, feed

pytestmark = pytest.mark.django_db


def state(rollout: Rollout) -> tuple[str, int, int]:
    rollout.refresh_from_db()
    return rollout.state, rollout.phase_index, rollout.weight


def split(service: str = "backend") -> TrafficSplit:
    return TrafficSplit.objects.get(service=service)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def healthy_until(rollout: Rollout, offset_s: int) -> None:
    """Healthy traffic split as the plan's weights split it, phase by phase."""
    feed(rollout.service, "v2.0.3", "stable", at(-3600), 3600, requests=2000)
    start = 0
    for phase in rollout.phases.order_by("index"):
        weight, length = phase.weight, phase.duration_s
        if weight < 100:
            feed(rollout.service, "v2.0.3", "stable", at(start), length, requests=2000)
            canary = max(1, round(2000 * weight / (100 - weight)))
        else:
            length, canary = offset_s - start, 2000
        feed(rollout.service, rollout.version, "canary", at(start), length, requests=canary)
        start += length


def test_a_standard_plan_walks_1_5_20_100_and_is_promoted(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    release = approved(tier="medium")
    rollout = lifecycle.rollout_start(release=release, actor=team["erin"], stable_version="v2.0.3")
    assert (rollout.plan, state(rollout)) == ("standard", ("running", 0, 1))
    assert (split().weight, split().canary_version) == (1, "v2.1.0")
    release.refresh_from_db()
    assert release.state == "deployed"
    healthy_until(rollout, 3 * 3600)

    boundaries = [
        (600, ("running", 1, 5)),
        (600 + 1200, ("running", 2, 20)),
        (600 + 1200 + 1800, ("monitoring", 3, 100)),
    ]
    for boundary, expected in boundaries:
        clock.move_to(at(boundary - 1))
        before = state(rollout)
        engine.tick()
        assert state(rollout) == before, f"advanced early at {boundary - 1}s"
        clock.move_to(at(boundary))
        engine.tick()
        assert state(rollout) == expected, (
            rollout.last_analysis["reason"],
            rollout.last_analysis["inputs"],
        )
        assert split().weight == expected[2]
    promote_at = 3600 + 7200
    clock.move_to(at(promote_at - 1))
    engine.tick()
    assert state(rollout)[0] == "monitoring"
    clock.move_to(at(promote_at))
    engine.tick()
    assert state(rollout)[0] == "promoted"
    assert (split().stable_version, split().canary_version, split().weight) == ("v2.1.0", "", 0)
    verdicts = list(rollout.phases.values_list("weight", "verdict"))
    assert verdicts == [(1, "passed"), (5, "passed"), (20, "passed"), (100, "promoted")]
    assert rollout.last_analysis["verdict"] == "healthy"


def test_a_high_risk_plan_takes_six_steps(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    release = approved(changed_paths=["src/backend/payments/stripe.py"])
    rollout = lifecycle.rollout_start(release=release, actor=team["erin"])
    assert rollout.plan == "high_risk"
    healthy_until(rollout, 6 * 3600)
    weights, elapsed = [rollout.weight], 0
    for phase in rollout.phases.order_by("index")[:5]:
        elapsed += phase.duration_s
        clock.move_to(at(elapsed))
        engine.tick()
        weights.append(state(rollout)[2])
    assert weights == [1, 2, 5, 10, 20, 100]
    assert rollout.monitoring_s == 4 * 3600


def test_without_enough_data_the_phase_waits(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    clock.move_to(at(3600))
    engine.tick()
    assert state(rollout) == ("running", 0, 1)
    assert rollout.last_analysis["verdict"] == "inconclusive"


def test_a_resumed_phase_gets_its_full_duration_again(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    feed("backend", "v2.0.3", "stable", at(-3600), 6 * 3600, requests=2000)
    feed("backend", "v2.1.0", "canary", at(0), 5 * 3600, requests=20)
    clock.move_to(at(240))
    lifecycle.rollout_pause(rollout=rollout, actor=team["sam"], reason="lunch")
    rollout.refresh_from_db()
    assert (rollout.pause_kind, rollout.pause_detail) == ("manual", "lunch")
    clock.move_to(at(3600))
    engine.tick()
    assert state(rollout) == ("paused", 0, 1)
    with pytest.raises(Conflict):
        lifecycle.rollout_pause(rollout=rollout, actor=team["sam"])
    lifecycle.rollout_resume(rollout=rollout, actor=team["sam"])
    rollout.refresh_from_db()
    assert (rollout.phase_started_at, rollout.phase_ends_at) == (at(3600), at(3600 + 600))
    assert (rollout.pause_kind, rollout.pause_detail, rollout.paused_at) == ("", "", None)
    clock.move_to(at(3600 + 599))
    engine.tick()
    assert state(rollout) == ("running", 0, 1)
    clock.move_to(at(3600 + 600))
    engine.tick()
    assert state(rollout) == ("running", 1, 5)
    with pytest.raises(Conflict):
        lifecycle.rollout_resume(rollout=rollout, actor=team["sam"])


def test_a_manual_promotion_moves_to_the_next_phase_at_once(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    with pytest.raises(Invalid):
        promotion.rollout_promote(
            rollout=rollout, actor=team["carol"], mode="manual", confirmed=False
        )
    steps = []
    for _ in range(4):
        promotion.rollout_promote(
            rollout=rollout, actor=team["carol"], mode="manual", confirmed=True
        )
        steps.append(state(rollout))
    assert steps == [
        ("running", 1, 5),
        ("running", 2, 20),
        ("monitoring", 3, 100),
        ("promoted", 3, 100),
    ]
    assert split().stable_version == "v2.1.0"
    advanced = AuditEvent.objects.filter(action="rollout.advanced")
    assert [(e.actor, e.data["how"]) for e in advanced] == [("carol", "manual")] * 3
    with pytest.raises(Conflict):
        promotion.rollout_promote(
            rollout=rollout, actor=team["carol"], mode="manual", confirmed=True
        )


def test_one_active_rollout_per_service_and_a_closed_gate_refuses(
    approved: Callable[..., Release],
    new_release: Callable[..., Release],
    team: dict[str, Any],
    clock: Any,
) -> None:
    lifecycle.rollout_start(release=approved(), actor=team["erin"])
    with pytest.raises(Conflict) as busy:
        lifecycle.rollout_start(release=approved(version="v2.2.0"), actor=team["erin"])
    assert "is running" in busy.value.blocking[0]
    closed = new_release(service="frontend", version="v1")
    with pytest.raises(Conflict) as refused:
        lifecycle.rollout_start(release=closed, actor=team["erin"])
    assert "CI tests pass: pending" in refused.value.blocking
    assert not Rollout.objects.filter(service="frontend").exists()


def test_a_sustained_error_rate_rolls_back_and_the_report_says_why(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    feed("backend", "v2.1.0", "canary", at(0), 600, requests=1000, errors=100)
    clock.move_to(at(60))
    engine.tick()  # first seen: pending
    clock.move_to(at(359))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "running"
    assert {r["name"]: r["state"] for r in rollout.last_analysis["rules"]}[
        "error_rate"
    ] == "pending"
    clock.move_to(at(360))
    engine.tick()
    rollout.refresh_from_db()
    assert rollout.state == "rolled_back"
    assert split().weight == 0 and split().canary_version == ""
    assert decide(service="backend", user={"id": "u1", "internal": True}).variant == "stable"
    steps = {s.name: s.status for s in rollout.rollback.steps.all()}
    assert steps == {
        "route_to_stable": "ok",
        "stop_canary": "skipped",
        "clear_canary_cache": "skipped",
        "notify_oncall": "skipped",
        "incident_report": "ok",
    }
    report = rollout.incident_report
    assert "rule error_rate" in report and "error_rate 0.1 ≥ 0.05" in report
    assert "weight when" in report
    assert rollout.phases.get(index=0).verdict == "failed"
    assert PostRollbackAction.objects.filter(rollout=rollout).count() == 5


def test_gradual_rollback_steps_down_every_5_minutes(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    Rollout.objects.filter(pk=rollout.pk).update(weight=20, phase_index=2)
    lifecycle.rollout_abort(rollout=rollout, actor=team["oscar"], reason="slow", mode="gradual")
    assert split().weight == 10
    for offset, weight in [(299, 10), (300, 5), (599, 5), (600, 1), (899, 1), (900, 0)]:
        clock.move_to(at(offset))
        engine.tick()
        assert split().weight == weight, offset
    assert state(rollout)[0] == "rolled_back"


@pytest.fixture
def hung_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_a_failing_step_is_recorded_and_later_steps_still_run(
    approved: Callable[..., Release], team: dict[str, Any], settings: Any, hung_port: int
) -> None:
    settings.CANARY_TIME_SCALE = 60  # the 60 s stop timeout becomes 1 s
    ServiceHooks.objects.create(
        service="backend",
        stop_webhook=f"http://127.0.0.1:{hung_port}/",
        clear_cache_command="false",
    )
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["carol"], reason="bad canary")
    engine.rollback_continue(rollout.pk)
    steps = {s.name: s for s in rollout.rollback.steps.all()}
    assert steps["stop_canary"].status == "timed_out"
    assert steps["stop_canary"].detail == "timed out after 1s"
    assert 900 <= steps["stop_canary"].duration_ms < 3000
    assert steps["clear_canary_cache"].status == "failed"
    assert steps["incident_report"].status == "ok"
    assert state(rollout)[0] == "aborted"


def test_verification_and_overdue_reminders(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    lifecycle.rollout_abort(rollout=rollout, actor=team["carol"], reason="bad")
    engine.rollback_continue(rollout.pk)
    feed("backend", "v2.0.3", "stable", at(0), 600, requests=1000, errors=1)
    clock.move_to(at(599))
    assert engine.tick()["verified"] == 0
    clock.move_to(at(600))
    assert engine.tick()["verified"] == 1
    rollout.rollback.refresh_from_db()
    assert rollout.rollback.verification["result"] == "passed"

    clock.move_to(at(86_399))
    assert followups.actions_remind_overdue() == 0
    clock.move_to(at(86_400))
    assert followups.actions_remind_overdue() == 5
    assert followups.actions_remind_overdue() == 0
    assert AuditEvent.objects.filter(action="post_rollback.overdue").count() == 5
    action = rollout.actions.first()
    followups.action_close(action=action, actor=team["sam"], notes="done")
    with pytest.raises(Conflict):
        followups.action_close(action=action, actor=team["sam"])


def test_a_tick_without_a_transition_writes_no_history(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    healthy_until(rollout, 600)
    before = rollout.history.count()
    for second in (60, 120, 180):
        clock.move_to(at(second))
        engine.tick()
    rollout.refresh_from_db()
    assert rollout.history.count() == before
    assert rollout.last_analysis["at"] == "2026-11-26T14:03:00Z"


def test_a_required_customer_notice_must_go_out_its_lead_time_before_deploy(
    approved: Callable[..., Release], team: dict[str, Any], clock: Any
) -> None:
    from comms.notices import notice_create, notice_send

    release = approved(change_types=["ui_redesign"])  # requires a notice
    assert release.items.get(key="customer_notice_sent").status == "passed"
    with pytest.raises(Conflict) as refused:
        lifecycle.rollout_start(release=release, actor=team["erin"])
    assert refused.value.blocking == ["Customer notice: none sent for this release"]
    notice = notice_create(
        template="scheduled_maintenance",
        actor=team["sam"],
        release=release,
        variables={"DATE": "d", "TIME": "t", "TIMEZONE": "UTC"},
    )
    notice_send(notice.pk)
    clock.move_to(at(86_399))
    with pytest.raises(Conflict, match="lead time"):
        lifecycle.rollout_start(release=release, actor=team["erin"])
    clock.move_to(at(86_400))
    assert lifecycle.rollout_start(release=release, actor=team["erin"]).state == "running"
