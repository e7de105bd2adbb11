"""The release dashboard: traffic split, error rates, latency percentiles, conversions,
margin impact and abort rules with their timers, for one rollout."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from governance.models import Service
from portal import clock
from rollouts.analysis.comparison import compare
from rollouts.charts import bar_chart, line_chart
from rollouts.choices import PauseKind, Variant
from rollouts.metrics.base import metrics_source
from rollouts.models import Rollout
from rollouts.presenters import pause_reason
from rollouts.services_json import router_state

BUCKETS = 60


def _series(rollout: Rollout, now: datetime) -> dict[str, Any]:
    end = rollout.ended_at or now
    start = rollout.started_at - (end - rollout.started_at) * 0.05
    step = max((end - start) / BUCKETS, timedelta(seconds=1))
    read = metrics_source().series(rollout, start, end, step)
    out: dict[str, dict[str, list[tuple[datetime, float | None]]]] = {
        "traffic": defaultdict(list),
        "errors": defaultdict(list),
        "latency": defaultdict(list),
    }
    canary = {stats.end: stats for stats in read.get(Variant.CANARY, [])}
    stable = {stats.end: stats for stats in read.get(Variant.STABLE, [])}
    for moment in sorted(canary.keys() | stable.keys()):
        served = {"canary": canary.get(moment), "stable": stable.get(moment)}
        total = sum(stats.requests for stats in served.values() if stats)
        for name, stats in served.items():
            share = 100 * stats.requests / total if stats and total else 0
            out["traffic"][f"{name} %"].append((moment, share))
        for name, stats in served.items():
            if not stats or not stats.requests:
                continue
            out["errors"][f"{name} error %"].append((moment, 100 * stats.errors / stats.requests))
            for q in (0.5, 0.95, 0.99):
                out["latency"][f"{name} p{round(q * 100)}"].append((moment, stats.quantile(q)))
    return out


def _pause(rollout: Rollout) -> dict[str, Any] | None:
    reason = pause_reason(rollout)
    if reason is None:
        return None
    return {**reason, "label": PauseKind(reason["kind"]).label}


@staff_member_required
def rollout_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    rollout = get_object_or_404(Rollout, pk=pk)
    now = clock.now()
    series = _series(rollout, now)
    figures = compare(rollout, now)
    service = Service.objects.filter(name=rollout.service).first()
    conversions = [
        (f"{path} canary", block["canary"] and block["canary"] * 100, block["level"])
        for path, block in figures["conversions"].items()
    ]
    margin = [
        (name.replace("_", " "), block["delta_pct"], block["level"])
        for name, block in figures["margin"].items()
    ]
    return render(
        request,
        "rollouts/dashboard.html",
        {
            "rollout": rollout,
            "router": router_state(service) if service else None,
            "service_router": service.router if service else "",
            "metrics_kind": service.metrics if service else "push",
            "figures": figures,
            "pause": _pause(rollout),
            "refresh": rollout.is_active,
            "now": now,
            "charts": {
                "traffic": line_chart(
                    "Traffic distribution (share of requests)", series["traffic"], "%"
                ),
                "errors": line_chart("Error rate, canary vs stable", series["errors"], "%"),
                "latency": line_chart("Latency percentiles (ms)", series["latency"]),
                "conversions": bar_chart("Conversion funnel (last hour, canary)", conversions, "%"),
                "margin": bar_chart(
                    "Margin impact vs stable (last hour)", margin, "%", signed=True
                ),
            },
            "rules": [
                {
                    **rule,
                    "elapsed_s": round((now - rule["since"]).total_seconds())
                    if rule["since"]
                    else None,
                }
                for rule in figures["abort_rules"]
            ],
        },
    )
