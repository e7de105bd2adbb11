"""The answers of the rollouts API as the contract shows them (documentation: the views
build them with `rollouts.presenters`, and schemathesis checks one against the other)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.choices import MetricsSource, RouterKind
from rollouts.choices import PauseKind, RolloutState


class PhaseNowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    weight = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)


class PhaseSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    weight = serializers.IntegerField()
    duration_s = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    verdict = serializers.CharField(allow_null=True)


class RollbackStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    timeout_s = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class RollbackSerializer(serializers.Serializer):
    mode = serializers.CharField()
    reason = serializers.CharField()
    trigger = serializers.CharField()
    operator = serializers.CharField(allow_null=True)
    from_weight = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = RollbackStepSerializer(many=True)
    verify_at = serializers.DateTimeField(allow_null=True)
    verification = serializers.JSONField(allow_null=True)


class PostRollbackActionSerializer(serializers.Serializer):
    kind = serializers.CharField()
    due_at = serializers.DateTimeField()
    done_at = serializers.DateTimeField(allow_null=True)
    assignee = serializers.CharField(allow_null=True)


class PauseReasonSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PauseKind.choices)
    detail = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField(allow_null=True)


class RolloutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    release = serializers.IntegerField()
    service = serializers.CharField()
    version = serializers.CharField()
    stable_version = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=RolloutState.choices)
    plan = serializers.CharField()
    phase = PhaseNowSerializer()
    weight = serializers.IntegerField()
    phases = PhaseSerializer(many=True)
    last_analysis = serializers.JSONField(allow_null=True)
    rollback = RollbackSerializer(allow_null=True)
    auto_promote = serializers.BooleanField()
    pause_reason = PauseReasonSerializer(allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    started_by = serializers.CharField()
    incident_report = serializers.CharField(allow_null=True)
    post_rollback_actions = PostRollbackActionSerializer(many=True)


class AwaitingSerializer(serializers.Serializer):
    """A full manual promotion waiting for its second member."""

    awaiting = serializers.CharField()
    rollout = serializers.IntegerField()
    requested_by = serializers.CharField()
    approver = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField()


class KillSwitchAnswerSerializer(serializers.Serializer):
    rollout = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RolloutState.choices)
    detail = serializers.CharField(
        required=False, help_text="With 502: the router did not confirm weight 0, and why."
    )


class SourceStateSerializer(serializers.Serializer):
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="What the metrics source could not read."
    )
    unavailable = serializers.BooleanField(help_text="The metrics source could not be reached.")


class ComparisonSerializer(serializers.Serializer):
    """The live comparison of a canary with stable (`GET /ops/canary/metrics`)."""

    version = serializers.CharField()
    service = serializers.CharField()
    stable_version = serializers.CharField(allow_null=True)
    rollout = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RolloutState.choices)
    weight = serializers.IntegerField()
    requests = serializers.DictField(child=serializers.IntegerField())
    latency_ms = serializers.JSONField()
    error_rate = serializers.JSONField()
    status_codes = serializers.JSONField()
    conversions = serializers.JSONField()
    margin = serializers.JSONField()
    system = serializers.JSONField()
    complaints = serializers.JSONField()
    metrics_source = SourceStateSerializer()
    abort_rules = serializers.ListField(child=serializers.JSONField())


class StickyCookieSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    max_age = serializers.IntegerField()


class RoutingDecisionSerializer(serializers.Serializer):
    variant = serializers.ChoiceField(choices=["canary", "stable"])
    version = serializers.CharField(allow_blank=True)
    reason = serializers.CharField()
    set_cookie = StickyCookieSerializer()


class IngestAnswerSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()


# The metrics batch, documented for the schema; `rollouts.ingest` validates it (the
# whole batch or nothing, 400 naming the bad sample by index).


def _count(**options: Any) -> serializers.IntegerField:
    """A count: a whole number that fits the bigint column it is stored in."""
    return serializers.IntegerField(min_value=0, max_value=2**63 - 1, **options)


class HistogramSerializer(serializers.Serializer):
    le = serializers.ListField(
        child=serializers.JSONField(), help_text='Upper bounds, the last one "+Inf".'
    )
    counts = serializers.ListField(child=_count())


class ConversionSerializer(serializers.Serializer):
    attempts = _count()
    successes = _count()


class SampleSerializer(serializers.Serializer):
    service = serializers.CharField(max_length=64)
    version = serializers.CharField(max_length=64)
    variant = serializers.ChoiceField(choices=["canary", "stable"])
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    requests = _count()
    errors = _count()  # type: ignore[assignment]
    status_4xx = _count(required=False)
    status_5xx = _count(required=False)
    latency_ms = HistogramSerializer(required=False, allow_null=True)
    conversions = serializers.DictField(
        child=ConversionSerializer(), required=False, allow_null=True
    )
    business = serializers.DictField(
        child=serializers.FloatField(min_value=0), required=False, allow_null=True
    )
    system = serializers.DictField(
        child=serializers.FloatField(min_value=0), required=False, allow_null=True
    )
    complaints = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


class MetricsBatchSerializer(serializers.Serializer):
    samples = SampleSerializer(many=True)


class RouterStateSerializer(serializers.Serializer):
    weight = serializers.IntegerField(help_text="The canary weight the router confirmed.")
    applied_at = serializers.DateTimeField(allow_null=True, help_text="When it confirmed it.")
    ok = serializers.BooleanField(help_text="Whether the router confirmed its last call.")
    error = serializers.CharField(required=False, help_text="Only when not ok: why.")
    pending_weight = serializers.IntegerField(
        required=False, allow_null=True, help_text="Only when not ok: the weight that waits."
    )
    next_attempt_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Only when not ok: the next retry."
    )


class ServiceSerializer(serializers.Serializer):
    name = serializers.CharField()
    modules = serializers.ListField(child=serializers.CharField())
    stable_url = serializers.CharField()
    canary_url = serializers.CharField()
    router = serializers.ChoiceField(choices=RouterKind.choices)
    metrics = serializers.ChoiceField(choices=MetricsSource.choices)
    router_state = RouterStateSerializer()
