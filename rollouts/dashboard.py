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
from rollouts.choices import PauseKind
from rollouts.metrics.base import histogram_quantile
from rollouts.models import MetricSample, Rollout
from rollouts.presenters import pause_reason
from rollouts.services_json import router_state

BUCKETS = 60


def _series(rollout: Rollout, now: datetime) -> dict[str, Any]:
    end = rollout.ended_at or now
    start = rollout.started_at - (end - rollout.started_at) * 0.05
    step = max((end - start) / BUCKETS, timedelta(seconds=1))
    rows = MetricSample.objects.filter(service=rollout.service, end__gt=start, end__lte=end)
    acc: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [0, 0, {}])
    for variant, version, at, requests, errors, bounds, counts in rows.values_list(
        "variant", "version", "end", "requests", "errors", "latency_le", "latency_counts"
    ):
        if variant == "canary" and version != rollout.version:
            continue
        bucket = acc[(int((at - start) / step), variant)]
        bucket[0] += requests
        bucket[1] += errors
        for bound, count in zip(bounds or [], counts or [], strict=True):
            key = float("inf") if bound == "+Inf" else float(bound)
            bucket[2][key] = bucket[2].get(key, 0) + count
    times = sorted({index for index, _ in acc})
    out: dict[str, dict[str, list[tuple[datetime, float | None]]]] = {
        "traffic": defaultdict(list),
        "errors": defaultdict(list),
        "latency": defaultdict(list),
    }
    for index in times:
        moment = start + step * (index + 1)
        canary, stable = acc.get((index, "canary")), acc.get((index, "stable"))
        total = (canary[0] if canary else 0) + (stable[0] if stable else 0)
        out["traffic"]["canary %"].append(
            (moment, 100 * canary[0] / total if canary and total else 0)
        )
        out["traffic"]["stable %"].append(
            (moment, 100 * stable[0] / total if stable and total else 0)
        )
        for name, found in (("canary", canary), ("stable", stable)):
            if not found or not found[0]:
                continue
            bucket = found
            out["errors"][f"{name} error %"].append((moment, 100 * bucket[1] / bucket[0]))
            bounds = sorted(bucket[2])
            for q in (0.5, 0.95, 0.99):
                value = histogram_quantile(q, bounds, [bucket[2][b] for b in bounds])
                out["latency"][f"{name} p{round(q * 100)}"].append((moment, value))
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
