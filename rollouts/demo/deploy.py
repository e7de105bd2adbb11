"""The demo's two releases, approved and deployed: `checkout` (healthy) and `search` (its
canary fails). Used by `seed_demo --rollouts` and by `demo_traffic --rollouts`, which
deploys them once the services' routers are up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from governance.services import checklist_sign, release_create
from rollouts.lifecycle import active_rollout, rollout_start
from rollouts.models import Plan, Rollout

STABLE_VERSION = "v1.0.0"
RELEASES = (("checkout", "Faster basket totals."), ("search", "New ranking model."))
SERVICES = tuple(service for service, _ in RELEASES)


def member(role: str) -> Any:
    """The first demo member holding `role` (seed_demo creates one per role)."""
    user = get_user_model().objects.filter(groups__name=role).order_by("username").first()
    if user is None:
        raise LookupError(f"no member has the role {role}: run seed_demo first")
    return user


def demo_plan() -> str:
    """The standard plan judged on coarser floors: the demo's few hundred requests a
    second leave too few canary requests at 1% to see a 0.2-point error rise, and the
    statistical judge would (rightly) pause checkout for it. Production plans keep theirs."""
    standard = Plan.objects.get(name="standard")
    fields = {
        f.name: getattr(standard, f.name)
        for f in Plan._meta.concrete_fields
        if f.name not in ("id", "name", "description")
    }
    fields |= {
        "judge_error_floor_pts": 25.0,
        "judge_p95_floor_pct": 100.0,
        "judge_conversion_floor_pct": 50.0,
    }
    Plan.objects.update_or_create(
        name="demo",
        defaults={**fields, "description": "The standard plan, judged on the demo's traffic."},
    )
    return "demo"


def deploy_demo_rollouts(
    *,
    say: Callable[[str], None],
    before_start: Callable[[str, str], None] | None = None,
) -> list[Rollout]:
    """A fresh version of each demo service, approved and deployed, unless one of the
    service is still active. `before_start(service, version)` runs just before the
    rollout starts (the demo starts the canary's process there)."""
    engineer = member("engineer")
    started = []
    for service, changelog in RELEASES:
        if active_rollout(service) is not None:
            continue
        version = f"v1.{Rollout.objects.filter(service=service).count() + 1}.0"
        release = release_create(
            author=engineer,
            service=service,
            version=version,
            tier="low",
            changed_paths=[f"src/{service}/service.py"],
            change_types=["feature"],
            changelog=changelog,
            rollback_plan=f"Redeploy the previous {service} version.",
        )
        for item in release.items.filter(required=True):
            checklist_sign(
                release=release, key=item.key, user=member(item.signer_roles[0]), status="passed"
            )
        if before_start is not None:
            before_start(service, version)
        started.append(
            rollout_start(
                release=release, actor=engineer, plan=demo_plan(), stable_version=STABLE_VERSION
            )
        )
        say(f"Deployed demo rollout {service} {version}.")
    return started
