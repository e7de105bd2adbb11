"""Metric ingest: samples/s through the validated batch ingest, beside a plain psycopg
COPY of the same rows into the same table, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \
        .venv/bin/python bench/ingest.py [--samples 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from common import scratch_database

from rollouts.metrics.ingest import ingest
from rollouts.models import MetricSample

START = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def sample(n: int) -> dict:
    begin = START + timedelta(seconds=10 * n)
    return {
        "service": f"svc{n % 50}",
        "version": "v2.1.0",
        "variant": "canary" if n % 2 else "stable",
        "start": begin.isoformat(),
        "end": (begin + timedelta(seconds=10)).isoformat(),
        "requests": 1000,
        "errors": 12,
        "status_4xx": 5,
        "status_5xx": 7,
        "latency_ms": {
            "le": [25, 50, 100, 200, 300, 500, 1000, "+Inf"],
            "counts": [100, 300, 400, 150, 30, 15, 5, 0],
        },
        "conversions": {"/checkout": {"attempts": 100, "successes": 85}},
        "business": {
            "orders": 40,
            "order_value_total": 2090.5,
            "payments_attempted": 41,
            "payments_failed": 0,
            "refunds": 1,
            "processing_cost_total": 12.3,
        },
        "system": {
            "cpu_pct": 41,
            "memory_pct": 55,
            "disk_io_pct": 12,
            "db_connections_pct": 30,
            "queue_depth": 12,
        },
        "complaints": 0,
    }


def copy_rows(samples: list[dict]) -> None:
    from django.db import connection

    columns = [
        "service",
        "version",
        "variant",
        "start",
        "end",
        "requests",
        "errors",
        "status_4xx",
        "status_5xx",
        "latency_le",
        "latency_counts",
        "conversions",
        "business",
        "system",
        "complaints",
        "received_at",
    ]
    now = datetime.now(UTC).isoformat()
    with connection.cursor() as cursor:
        quoted = ", ".join(f'"{c}"' for c in columns)
        copy_sql = f"COPY rollouts_metricsample ({quoted}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for s in samples:
                copy.write_row(
                    [
                        s["service"],
                        s["version"],
                        s["variant"],
                        s["start"],
                        s["end"],
                        s["requests"],
                        s["errors"],
                        s["status_4xx"],
                        s["status_5xx"],
                        json.dumps(s["latency_ms"]["le"]),
                        json.dumps(s["latency_ms"]["counts"]),
                        json.dumps(s["conversions"]),
                        json.dumps(s["business"]),
                        json.dumps(s["system"]),
                        s["complaints"],
                        now,
                    ]
                )


def main() -> None:
    parser = argparse.ArgumentParser(description="Metric ingest against COPY.")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    samples = [sample(n) for n in range(args.samples)]
    with scratch_database():
        started = time.perf_counter()
        copy_rows(samples)
        copy_rate = args.samples / (time.perf_counter() - started)
        MetricSample.objects.all().delete()
        started = time.perf_counter()
        for i in range(0, args.samples, args.batch):
            ingest({"samples": samples[i : i + args.batch]})
        ingest_rate = args.samples / (time.perf_counter() - started)
        print(f"{'method':<8} {'samples/s':>10}")
        print(f"{'COPY':<8} {copy_rate:>10.0f}")
        print(
            f"{'ingest':<8} {ingest_rate:>10.0f}   ratio {ingest_rate / copy_rate:.2f} "
            f"(target ≥ 0.30), batches of {args.batch}"
        )


if __name__ == "__main__":
    main()
