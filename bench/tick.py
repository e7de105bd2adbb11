"""One engine tick: seconds for 10, 100 and 1,000 active rollouts x every seeded rule,
each rollout with a minute of canary and stable samples, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \
        .venv/bin/python bench/tick.py [--sizes 10 100 1000]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from common import scratch_database
from django.contrib.auth import get_user_model

from governance.models import Release
from portal import clock
from rollouts import engine
from rollouts.models import MetricSample, Phase, Rollout


def populate(count: int) -> None:
    now = clock.now()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    releases = Release.objects.bulk_create(
        Release(
            service=f"svc{n}",
            version="v2",
            declared_tier="low",
            tier="low",
            risk="low",
            state="deployed",
            created_by_name="bench",
        )
        for n in range(count)
    )
    rollouts = Rollout.objects.bulk_create(
        Rollout(
            release=r,
            service=r.service,
            version="v2",
            stable_version="v1",
            plan="standard",
            state="running",
            weight=5,
            phase_index=1,
            phase_started_at=now - timedelta(minutes=5),
            phase_ends_at=now + timedelta(hours=1),
            monitoring_s=7200,
            started_by=user,
            started_by_name="bench",
        )
        for r in releases
    )
    Phase.objects.bulk_create(
        Phase(rollout=r, index=i, weight=w, duration_s=600)
        for r in rollouts
        for i, w in enumerate((1, 5, 20, 100))
    )
    samples = []
    for r in rollouts:
        for k in range(6):
            begin = now - timedelta(seconds=60 - 10 * k)
            for variant, requests in (("canary", 100), ("stable", 1900)):
                samples.append(
                    MetricSample(
                        service=r.service,
                        version="v2" if variant == "canary" else "v1",
                        variant=variant,
                        start=begin,
                        end=begin + timedelta(seconds=10),
                        requests=requests,
                        errors=1,
                        latency_le=[100, 200, "+Inf"],
                        latency_counts=[80, 20, 0],
                        system={"memory_pct": 50},
                    )
                )
    MetricSample.objects.bulk_create(samples, batch_size=5000)


def main() -> None:
    parser = argparse.ArgumentParser(description="Engine tick time by number of rollouts.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args()
    print(f"{'rollouts':>8} {'tick s':>8} {'ms/rollout':>11}")
    for size in args.sizes:
        with scratch_database():
            populate(size)
            engine.tick()  # warm: creates rule states
            started = time.perf_counter()
            counts = engine.tick()
            elapsed = time.perf_counter() - started
            assert counts["checked"] == size, counts
            print(f"{size:>8} {elapsed:>8.2f} {1000 * elapsed / size:>11.1f}")


if __name__ == "__main__":
    main()
