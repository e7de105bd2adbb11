"""Releases: assessment, checklists by tier, sign-off, council votes and the gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import time_machine

from governance.models import AuditEvent, Release, RiskRule
from governance.services import (
    approvals_refresh,
    checklist_sign,
    release_gate,
    release_mark_deployed,
    release_update,
    releases_reassess_open,
    vote_cast,
)
from portal.errors import Conflict, Invalid, NotAllowed, NotFound

pytestmark = pytest.mark.django_db

NewRelease = Callable[..., Release]
INFRA = {
    "canary_env_ready",
    "dashboards_configured",
    "alert_rules_active",
    "rollback_tested",
    "oncall_notified",
    "stakeholders_notified",
    "status_page_updated",
    "db_backup_verified",
    "config_backup_created",
    "artifact_snapshot_taken",
}


def required(release: Release) -> set[str]:
    return set(release.items.filter(required=True).values_list("key", flat=True))


class TestAssessment:
    def test_low_tier_needs_ci_lint_and_readiness(self, new_release: NewRelease) -> None:
        release = new_release(tier="low")
        assert (release.tier, release.risk, release.approvals_required) == ("low", "low", 0)
        assert required(release) == {"ci_tests", "lint"} | INFRA

    def test_medium_tier_needs_steward_approval_and_no_council(
        self, new_release: NewRelease
    ) -> None:
        release = new_release(tier="medium")
        assert (
            required(release)
            == {"ci_tests", "integration_tests", "security_scan", "steward_approval"} | INFRA
        )
        assert release.approvals_required == 0

    def test_high_tier_needs_two_council_votes(self, new_release: NewRelease) -> None:
        release = new_release(tier="high")
        assert (
            required(release)
            == {
                "ci_tests",
                "integration_tests",
                "e2e_tests",
                "security_scan",
                "compliance_review",
                "rollback_plan",
            }
            | INFRA
        )
        assert release.approvals_required == 2
        assert release.risk == "high"

    def test_a_critical_path_forces_high_tier_and_adds_its_checks(
        self, new_release: NewRelease
    ) -> None:
        release = new_release(
            tier="low",
            changed_paths=["src/backend/payments/stripe.py", "frontend/pages/index.tsx"],
        )
        assert (release.declared_tier, release.tier, release.risk) == ("low", "high", "critical")
        assert [rule["pattern"] for rule in release.matched_rules] == ["src/backend/payments/**"]
        assert release.matched_rules[0]["extra_checks"] == ["pci_compliance", "fraud_detection"]
        keys = required(release)
        assert {"pci_compliance", "fraud_detection", "business_validation", "e2e_tests"} <= keys
        assert "lint" not in keys
        assert release.approvals_required == 2

    def test_several_rules_combine(self, new_release: NewRelease) -> None:
        RiskRule.objects.create(
            pattern="src/backend/payments/refunds/**",
            risk="critical",
            approvals_required=3,
            extra_checks=["security_audit"],
        )
        release = new_release(
            changed_paths=[
                "src/backend/payments/refunds/a.py",
                "db/migrations/0042_x.py",
                "src/backend/avatars/crop.py",
            ]
        )
        patterns = {rule["pattern"] for rule in release.matched_rules}
        assert patterns == {
            "src/backend/payments/**",
            "src/backend/payments/refunds/**",
            "**/migrations/**",
            "src/backend/avatars/**",
        }
        assert release.approvals_required == 3
        assert {
            "pci_compliance",
            "fraud_detection",
            "security_audit",
            "privacy_review",
            "rollback_plan",
            "business_validation",
        } <= required(release)

    def test_a_file_named_like_the_module_is_not_the_module(self, new_release: NewRelease) -> None:
        release = new_release(changed_paths=["src/backend/payments", "migrations.py"])
        assert release.matched_rules == []
        assert release.tier == "medium"

    def test_a_notice_change_type_requires_the_customer_notice(
        self, new_release: NewRelease
    ) -> None:
        quiet = new_release(change_types=["bug_fix", "security_patch"])
        assert not quiet.notice_required
        assert "customer_notice_sent" not in required(quiet)
        loud = new_release(version="v2.2.0", change_types=["bug_fix", "ui_redesign"])
        assert loud.notice_required
        assert "customer_notice_sent" in required(loud)

    def test_bad_paths_are_refused(self, new_release: NewRelease) -> None:
        with pytest.raises(Invalid):
            new_release(changed_paths=["src/../etc/passwd"])
        assert not Release.objects.exists()

    def test_a_duplicate_version_is_a_conflict(self, new_release: NewRelease) -> None:
        new_release()
        with pytest.raises(Conflict):
            new_release()
        assert Release.objects.count() == 1


class TestSignOff:
    def test_a_signer_role_signs_with_evidence_and_it_is_recorded(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="high", changed_paths=["src/backend/payments/a.py"])
        item = checklist_sign(
            release=release,
            key="business_validation",
            user=team["fiona"],
            status="passed",
            evidence_url="https://docs.example.com/bv",
            note="margins fine",
        )
        item.refresh_from_db()
        assert (item.status, item.signed_by_name, item.evidence_url) == (
            "passed",
            "fiona",
            "https://docs.example.com/bv",
        )
        assert item.signed_at is not None
        event = AuditEvent.objects.get(action="checklist.signed")
        assert event.release_id == release.pk
        assert event.data["to"] == "passed" and event.data["note"] == "margins fine"
        assert item.history.first().history_user_name == "fiona"

    def test_a_member_without_the_signer_role_is_refused(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="high", changed_paths=["src/backend/payments/a.py"])
        for user in ("erin", "carol", "sid", "olivia"):
            with pytest.raises(NotAllowed, match="finance"):
                checklist_sign(
                    release=release, key="business_validation", user=team[user], status="passed"
                )
        assert release.items.get(key="business_validation").status == "pending"

    def test_an_item_the_release_does_not_need_is_not_found(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="low")
        with pytest.raises(NotFound):
            checklist_sign(
                release=release, key="business_validation", user=team["fiona"], status="passed"
            )
        with pytest.raises(NotFound):
            checklist_sign(release=release, key="nonsense", user=team["erin"], status="passed")

    def test_the_rollback_plan_item_needs_a_plan(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="high", rollback_plan="")
        with pytest.raises(Invalid, match="no rollback plan"):
            checklist_sign(release=release, key="rollback_plan", user=team["sam"], status="passed")
        release_update(release=release, actor=team["erin"], rollback_plan="Redeploy v2.0.3")
        checklist_sign(release=release, key="rollback_plan", user=team["sam"], status="passed")


class TestVotes:
    def test_two_distinct_council_members_open_the_gate(
        self, new_release: NewRelease, team: dict[str, Any], sign_all: Callable[[Release], None]
    ) -> None:
        release = new_release(tier="high")
        sign_all(release)
        assert release_gate(release).blocking == ["Council approval: 0 of 2"]
        vote_cast(release=release, voter=team["carol"], decision="approve", comment="ok")
        assert release_gate(release).blocking == ["Council approval: 1 of 2"]
        _, created = vote_cast(release=release, voter=team["carol"], decision="approve")
        assert not created
        assert release_gate(release).approvals == 1  # one member, one vote
        vote_cast(release=release, voter=team["dave"], decision="approve", comment="lgtm")
        gate = release_gate(release)
        assert gate.ready and gate.blocking == []
        release.refresh_from_db()
        assert release.state == "approved"

    def test_the_author_can_never_vote_not_even_as_council_admin(
        self, new_release: NewRelease, team: dict[str, Any], make_member: Callable[..., Any]
    ) -> None:
        boss = make_member("boss", "council", "engineer")
        boss.is_superuser = True
        boss.save()
        from governance.services import release_create

        release = release_create(author=boss, service="backend", version="v9", tier="high")
        with pytest.raises(NotAllowed, match="Authors"):
            vote_cast(release=release, voter=boss, decision="approve")
        assert not release.votes.exists()

    def test_only_council_members_vote(self, new_release: NewRelease, team: dict[str, Any]) -> None:
        release = new_release(tier="high")
        for name in ("sam", "oscar", "fiona", "olivia"):
            with pytest.raises(NotAllowed, match="council"):
                vote_cast(release=release, voter=team[name], decision="approve")

    def test_one_current_reject_blocks_until_changed(
        self,
        new_release: NewRelease,
        team: dict[str, Any],
        sign_all: Callable[[Release], None],
        make_member: Callable[..., Any],
    ) -> None:
        release = new_release(tier="high")
        sign_all(release)
        make_member("zoe", "council")
        from django.contrib.auth import get_user_model

        zoe = get_user_model().objects.get(username="zoe")
        vote_cast(release=release, voter=team["carol"], decision="approve")
        vote_cast(release=release, voter=team["dave"], decision="approve")
        vote_cast(release=release, voter=zoe, decision="reject", comment="not on a Friday")
        gate = release_gate(release)
        assert not gate.ready
        assert gate.blocking == ["Council approval: rejected by zoe"]
        assert (gate.approvals, gate.rejections) == (2, 1)
        vote_cast(release=release, voter=zoe, decision="approve")
        assert release_gate(release).ready

    def test_changes_make_earlier_votes_stale_but_visible(
        self, new_release: NewRelease, team: dict[str, Any], sign_all: Callable[[Release], None]
    ) -> None:
        release = new_release(tier="high")
        sign_all(release)
        vote_cast(release=release, voter=team["carol"], decision="approve")
        vote_cast(release=release, voter=team["dave"], decision="approve")
        assert release_gate(release).ready
        release = release_update(release=release, actor=team["erin"], changelog="typo")
        assert release_gate(release).ready  # the changelog does not invalidate votes
        for change in (
            {"changed_paths": ["docs/x.md"]},
            {"rollback_plan": "Restore"},
            {"version": "v2.1.1"},
        ):
            vote_cast(release=release, voter=team["carol"], decision="approve")
            vote_cast(release=release, voter=team["dave"], decision="approve")
            release = release_update(release=release, actor=team["erin"], **change)
            gate = release_gate(release)
            assert not gate.ready, change
            assert gate.approvals == 0
            assert [vote.stale for vote in gate.votes] == [True, True]
            assert gate.as_json()["approvals"]["votes"][0]["stale"] is True
        release.refresh_from_db()
        assert release.state == "pending_approval"

    def test_a_voter_who_leaves_the_council_no_longer_counts(
        self, new_release: NewRelease, team: dict[str, Any], sign_all: Callable[[Release], None]
    ) -> None:
        from governance.members import member_set_roles

        release = new_release(tier="high")
        sign_all(release)
        vote_cast(release=release, voter=team["carol"], decision="approve")
        vote_cast(release=release, voter=team["dave"], decision="approve")
        member_set_roles(username="dave", roles=["ops"])
        team["dave"].refresh_from_db()
        gate = release_gate(release)
        assert gate.approvals == 1
        assert not gate.ready

    def test_pending_approvals_expire_after_30_days(
        self, new_release: NewRelease, team: dict[str, Any], sign_all: Callable[[Release], None]
    ) -> None:
        with time_machine.travel("2026-11-01T12:00:00Z", tick=False):
            release = new_release(tier="high")
            sign_all(release)
            vote_cast(release=release, voter=team["carol"], decision="approve")
            vote_cast(release=release, voter=team["dave"], decision="approve")
            release.refresh_from_db()
            assert release.state == "approved"
        with time_machine.travel("2026-12-01T11:59:59Z", tick=False):
            assert release_gate(release).ready
            assert approvals_refresh() == 0
        with time_machine.travel("2026-12-01T12:00:00Z", tick=False):
            gate = release_gate(release)
            assert gate.blocking == ["Council approval: 0 of 2"]
            assert all(vote.stale_reason == "expired" for vote in gate.votes)
            assert approvals_refresh() == 1
            release.refresh_from_db()
            assert release.state == "pending_approval"
            assert AuditEvent.objects.filter(
                action="release.state_changed", data_json__contains="expired"
            ).exists()
            vote_cast(release=release, voter=team["carol"], decision="approve")
            vote_cast(release=release, voter=team["dave"], decision="approve")
            release.refresh_from_db()
            assert release.state == "approved"


class TestGate:
    def test_blocking_reasons_are_readable(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="low", changed_paths=["src/backend/auth/login.py"])
        checklist_sign(release=release, key="ci_tests", user=team["erin"], status="failed")
        blocking = release_gate(release).blocking
        assert blocking[0] == "Council approval: 0 of 2"
        assert "CI tests pass: failed" in blocking
        assert "Security audit: pending" in blocking

    def test_deploy_refuses_a_closed_gate_and_closes_the_release(
        self, new_release: NewRelease, team: dict[str, Any], sign_all: Callable[[Release], None]
    ) -> None:
        release = new_release(tier="low")
        with pytest.raises(Conflict) as refused:
            release_mark_deployed(release=release, actor=team["erin"])
        assert "CI tests pass: pending" in refused.value.blocking
        sign_all(release)
        release = release_mark_deployed(release=release, actor=team["erin"])
        assert release.state == "deployed"
        assert release_gate(release).blocking == ["Release is already deployed"]
        with pytest.raises(Conflict):
            release_update(release=release, actor=team["erin"], changelog="late")
        with pytest.raises(Conflict):
            checklist_sign(release=release, key="ci_tests", user=team["erin"], status="pending")

    def test_editing_a_rule_reassesses_open_releases(
        self, new_release: NewRelease, team: dict[str, Any]
    ) -> None:
        release = new_release(tier="medium", changed_paths=["frontend/pages/index.tsx"])
        assert release.matched_rules == []
        RiskRule.objects.create(
            pattern="frontend/pages/**",
            risk="high",
            approvals_required=1,
            extra_checks=["privacy_review"],
        )
        assert releases_reassess_open(actor=team["sam"], reason="rule added") == 1
        release.refresh_from_db()
        assert release.tier == "medium" and release.risk == "high"
        assert release.approvals_required == 1
        assert "privacy_review" in required(release)
