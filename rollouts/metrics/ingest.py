"""Metric batches: validated whole, stored whole or not at all."""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from portal import clock
from portal.errors import Invalid
from portal.strict import INT64_MAX, aware_datetime, text_problem
from rollouts.choices import Variant
from rollouts.models import MetricSample

MAX_SAMPLES = 5000
MAX_BUCKETS = 64
MAX_PATHS = 50
_COUNTS = ("requests", "errors", "status_4xx", "status_5xx", "complaints")
_BUSINESS = (
    "orders",
    "order_value_total",
    "payments_attempted",
    "payments_failed",
    "refunds",
    "processing_cost_total",
)
_SYSTEM = ("cpu_pct", "memory_pct", "disk_io_pct", "db_connections_pct", "queue_depth")
_FIELDS = frozenset(
    {"service", "version", "variant", "start", "end", "latency_ms", "conversions"}
    | {"business", "system", *_COUNTS}
)
# The largest value each count's column holds (bigint; complaints is an integer).
_COLUMN_MAX = {name: INT64_MAX for name in _COUNTS} | {"complaints": 2**31 - 1}


class BadField(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _number(value: Any, field: str, *, whole: bool = False, most: int = INT64_MAX) -> float:
    kind = type(value)
    if kind is int and 0 <= value <= most:  # the common case, checked first
        return value
    if kind is float and not whole and 0 <= value < math.inf:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadField(field, "must be a number")
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise BadField(field, "must be finite")
    if whole and not (isinstance(value, int) or float(value).is_integer()):
        raise BadField(field, "must be a whole number")
    if value < 0:
        raise BadField(field, "must not be negative")
    if value > most:
        raise BadField(field, f"must be at most {most}")
    return value


def _time(value: Any, field: str) -> datetime:
    try:
        return aware_datetime(value)
    except ValueError as bad:
        raise BadField(field, str(bad)) from None


def _text(value: Any, field: str, *, most: int) -> str:
    if not isinstance(value, str) or not value or len(value) > most:
        raise BadField(field, f"is required (text, at most {most} characters)")
    if problem := text_problem(value, controls=True):
        raise BadField(field, problem)
    return value


def _histogram(block: Any) -> tuple[list[Any], list[int]]:
    if not isinstance(block, dict) or set(block) != {"le", "counts"}:
        raise BadField("latency_ms", 'must be {"le": [...], "counts": [...]}')
    bounds, counts = block["le"], block["counts"]
    if not isinstance(bounds, list) or not isinstance(counts, list) or not bounds:
        raise BadField("latency_ms", "le and counts must be non-empty lists")
    if len(bounds) > MAX_BUCKETS:
        raise BadField("latency_ms.le", f"at most {MAX_BUCKETS} buckets")
    if len(bounds) != len(counts):
        raise BadField("latency_ms.counts", "needs as many counts as bounds")
    if bounds[-1] != "+Inf":
        raise BadField("latency_ms.le", 'the last bound must be "+Inf"')
    finite = [_number(b, "latency_ms.le") for b in bounds[:-1]]
    if any(later <= earlier for earlier, later in itertools.pairwise(finite)):
        raise BadField("latency_ms.le", "bounds must increase")
    return [*finite, "+Inf"], [int(_number(c, "latency_ms.counts", whole=True)) for c in counts]


def _sample(raw: Any) -> dict[str, Any]:
    """A validated sample as the columns of its row."""
    if not isinstance(raw, dict):
        raise BadField("sample", "must be an object")
    if unknown := sorted(set(raw) - _FIELDS):
        raise BadField(unknown[0], "is not a known field")
    for name in ("service", "version"):
        _text(raw.get(name), name, most=64)
    if raw.get("variant") not in Variant.values:
        raise BadField("variant", "must be canary or stable")
    start, end = _time(raw.get("start"), "start"), _time(raw.get("end"), "end")
    if start >= end:
        raise BadField("end", "must be after start")
    if "requests" not in raw or "errors" not in raw:
        raise BadField("requests" if "requests" not in raw else "errors", "is required")
    counts = {
        name: int(_number(raw.get(name, 0), name, whole=True, most=_COLUMN_MAX[name]))
        for name in _COUNTS
    }
    for name in ("errors", "status_4xx", "status_5xx"):
        if counts[name] > counts["requests"]:
            raise BadField(name, "must not exceed requests")
    sample = dict(
        service=raw["service"],
        version=raw["version"],
        variant=raw["variant"],
        start=start,
        end=end,
        **counts,
    )
    if raw.get("latency_ms") is not None:
        sample["latency_le"], sample["latency_counts"] = _histogram(raw["latency_ms"])
    if raw.get("conversions") is not None:
        conversions = raw["conversions"]
        if not isinstance(conversions, dict) or len(conversions) > MAX_PATHS:
            raise BadField("conversions", f"must be an object of at most {MAX_PATHS} paths")
        for path, block in conversions.items():
            field = f"conversions.{_text(path, 'conversions', most=200)}"
            if not isinstance(block, dict):
                raise BadField(field, "must be {attempts, successes}")
            attempts = _number(block.get("attempts"), f"{field}.attempts", whole=True)
            successes = _number(block.get("successes"), f"{field}.successes", whole=True)
            if successes > attempts:
                raise BadField(f"{field}.successes", "must not exceed attempts")
        sample["conversions"] = conversions
    for block_name, allowed in (("business", _BUSINESS), ("system", _SYSTEM)):
        block = raw.get(block_name)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise BadField(block_name, "must be an object")
        for key, value in block.items():
            if key not in allowed:
                raise BadField(f"{block_name}.{key}", "is not a known field")
            _number(value, f"{block_name}.{key}")
            if key.endswith("_pct") and value > 100:
                raise BadField(f"{block_name}.{key}", "is a percentage (0 to 100)")
        if block_name == "business" and block.get("payments_failed", 0) > block.get(
            "payments_attempted", math.inf
        ):
            raise BadField("business.payments_failed", "must not exceed payments_attempted")
        sample[block_name] = block
    return sample


def ingest(body: Any) -> int:
    samples = body.get("samples") if isinstance(body, dict) else None
    unknown = sorted(set(body) - {"samples"}) if isinstance(body, dict) else []
    if unknown:
        raise Invalid(
            f"Unknown field {unknown[0]}.", errors={k: ["Unknown field."] for k in unknown}
        )
    if not isinstance(samples, list) or not samples:
        raise Invalid(
            "samples must be a non-empty list.", errors={"samples": ["must be a non-empty list"]}
        )
    if len(samples) > MAX_SAMPLES:
        raise Invalid(
            f"At most {MAX_SAMPLES} samples per batch.",
            errors={"samples": [f"at most {MAX_SAMPLES}"]},
        )
    rows = []
    for index, raw in enumerate(samples):
        try:
            rows.append(_sample(raw))
        except BadField as bad:
            raise Invalid(
                f"Sample {index}: {bad.field} {bad.message}.",
                errors={"samples": {str(index): {bad.field: [bad.message]}}},
            ) from None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy(rows)
        else:
            MetricSample.objects.bulk_create([MetricSample(**row) for row in rows], batch_size=1000)
    return len(rows)


_COLUMNS = [
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
_JSON = {"latency_le", "latency_counts", "conversions", "business", "system"}


def _copy(rows: list[dict[str, Any]]) -> None:
    """Validated rows go in with COPY: the same table, the same transaction, far fewer
    round trips than INSERTs."""
    received = clock.now()
    quoted = ", ".join(f'"{name}"' for name in _COLUMNS)
    sql = f"COPY rollouts_metricsample ({quoted}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            row["received_at"] = received
            copy.write_row(
                [
                    json.dumps(row[name])
                    if name in _JSON and row.get(name) is not None
                    else row.get(name)
                    for name in _COLUMNS
                ]
            )
