from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from governance.history import tracked_history
from governance.models import Release, Service
from portal import clock
from rollouts.choices import (
    ACTIVE_STATES,
    Audience,
    MetricKey,
    OnFailedValidation,
    PauseKind,
    PhaseVerdict,
    PostRollbackKind,
    RollbackMode,
    RolloutState,
    RuleStatus,
    StepName,
    StepStatus,
    Variant,
)


def _salt() -> str:
    return secrets.token_hex(8)


class Plan(models.Model):
    """A sequence of traffic weights with their durations, then monitoring at 100%."""

    name = models.SlugField(max_length=40, unique=True)
    description = models.CharField(max_length=200, blank=True)
    steps = models.JSONField(help_text='[{"weight": 1, "duration_s": 600}, ...] before 100%.')
    monitoring_s = models.PositiveIntegerField(help_text="Time at 100% before promotion.")
    check_every_s = models.PositiveIntegerField(default=300)
    # The phase gates (the guide's validation) and the rollback verification: data, edited
    # in the admin with history, seeded with the guide's values.
    gate_max_error_rate = models.FloatField(default=0.005, help_text="Canary error rate ≤ this.")
    gate_p95_budget_pct = models.FloatField(
        default=10.0, help_text="Canary p95 ≤ stable p95 plus this many percent."
    )
    gate_p95_fallback_ms = models.FloatField(
        default=300.0, help_text="p95 limit when there is no stable baseline."
    )
    gate_min_throughput = models.FloatField(
        default=0.95, help_text="Canary throughput ≥ this share of what its weight should bring."
    )
    verify_max_error_rate = models.FloatField(
        default=0.01, help_text="After a rollback: stable's error rate < this."
    )
    verify_max_p95_ms = models.FloatField(
        default=250.0, help_text="After a rollback: stable's p95 < this (ms)."
    )
    on_failed_validation = models.CharField(
        max_length=8,
        choices=OnFailedValidation.choices,
        default=OnFailedValidation.PAUSE,
        help_text="A phase whose validation fails at its deadline: pause it or roll it back.",
    )
    # The statistical judge (analysis/stats.py): canary against stable, metric by metric.
    judge_pass_score = models.FloatField(
        default=95.0, help_text="Judge score (0-100) at or above this: the phase passes."
    )
    judge_marginal_score = models.FloatField(
        default=75.0, help_text="Judge score below this fails the phase (between: marginal)."
    )
    judge_confidence = models.FloatField(
        default=0.99, help_text="A difference counts when its one-sided p-value < 1 - this."
    )
    judge_power = models.FloatField(
        default=0.8, help_text="Chance of seeing an effect at its floor that a phase must have."
    )
    judge_error_floor_pts = models.FloatField(
        default=0.2, help_text="An error-rate (or 5xx) rise under this many points never fails."
    )
    judge_p95_floor_pct = models.FloatField(
        default=5.0, help_text="A p95 rise under this many percent never fails."
    )
    judge_conversion_floor_pct = models.FloatField(
        default=2.0, help_text="A conversion drop under this many percent (relative) never fails."
    )

    history = tracked_history()

    def __str__(self) -> str:
        return self.name


class Rollout(models.Model):
    """One release shipped to a growing share of traffic, watched, then promoted or rolled back."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="rollouts")
    service = models.CharField(max_length=64, db_index=True)
    version = models.CharField(max_length=64)
    stable_version = models.CharField(max_length=64, blank=True)
    plan = models.CharField(max_length=40)
    state = models.CharField(max_length=16, choices=RolloutState.choices, db_index=True)
    phase_index = models.PositiveSmallIntegerField(default=0)
    weight = models.PositiveSmallIntegerField(default=0)
    phase_started_at = models.DateTimeField()
    phase_ends_at = models.DateTimeField()
    monitoring_s = models.PositiveIntegerField()
    auto_promote = models.BooleanField(default=True)
    # Why it is paused (the API's `pause_reason`: kind, detail, at = paused_at).
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_from = models.CharField(max_length=16, blank=True)
    pause_kind = models.CharField(max_length=20, choices=PauseKind.choices, blank=True)
    pause_detail = models.TextField(blank=True)
    # Since when every rule window of this rollout has come back unavailable (the metrics
    # source unreachable); None while the source answers.
    metrics_down_since = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=clock.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_name = models.CharField(max_length=150)
    last_analysis = models.JSONField(null=True, blank=True)
    incident_report = models.TextField(blank=True)
    # Salts the sticky hash, so each rollout draws its own canary population.
    salt = models.CharField(max_length=32, default=_salt, editable=False)

    history = tracked_history(excluded_fields=["last_analysis", "metrics_down_since"])

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service"],
                condition=Q(state__in=ACTIVE_STATES),
                name="one_active_rollout_per_service",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.version} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class FullPromotion(models.Model):
    """A full manual promotion (straight to 100%) asked for by one member, which a second
    member (council or steward, not the first, not the release's author; the named approver
    when there is one) confirms with the same call within 15 minutes."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="full_promotions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150)
    approver_name = models.CharField(
        max_length=150, blank=True, help_text="The only member who may confirm, when named."
    )
    requested_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_by_name = models.CharField(max_length=150, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"full promotion of {self.rollout} asked by {self.requested_by_name}"


class Phase(models.Model):
    """One step of a rollout's plan: a weight held for a duration."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="phases")
    index = models.PositiveSmallIntegerField()
    weight = models.PositiveSmallIntegerField()
    duration_s = models.PositiveIntegerField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(max_length=10, choices=PhaseVerdict.choices, blank=True)
    extended = models.BooleanField(default=False, help_text="Extended once for lack of data.")

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "index"], name="phase_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.rollout_id}#{self.index} {self.weight}%"


class Rollback(models.Model):
    """The rollback of a rollout: why, how, its steps and its verification."""

    rollout = models.OneToOneField(Rollout, on_delete=models.CASCADE, related_name="rollback")
    mode = models.CharField(max_length=8, choices=RollbackMode.choices)
    reason = models.TextField()
    trigger = models.CharField(max_length=100, help_text="A rule's name, or who aborted.")
    operator = models.CharField(max_length=150, blank=True)
    from_weight = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    verify_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollback of {self.rollout}"


class RollbackStep(models.Model):
    """One step of a rollback procedure, with its timeout and what happened."""

    rollback = models.ForeignKey(Rollback, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=40, choices=StepName.choices)
    weight = models.PositiveSmallIntegerField(null=True, blank=True)
    timeout_s = models.PositiveIntegerField()
    not_before = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=StepStatus.choices, default=StepStatus.PENDING)
    # A worker claims a step (pending → running) before acting; a claim past its expiry
    # belongs to a worker that died.
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.name} {self.status}"

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt at this step: a hook or webhook dedupes on it."""
        return f"rollback-{self.rollback_id}-step-{self.position}"


class PostRollbackAction(models.Model):
    """A follow-up the guide requires within 24 h of a rollback."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=40, choices=PostRollbackKind.choices)
    due_at = models.DateTimeField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    done_at = models.DateTimeField(null=True, blank=True)
    done_by_name = models.CharField(max_length=150, blank=True)
    notes = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.rollout}"


class TrafficSplit(models.Model):
    """The embedded router's state: what share of a service's traffic goes to the canary."""

    service = models.CharField(max_length=64, unique=True)
    stable_version = models.CharField(max_length=64, blank=True)
    canary_version = models.CharField(max_length=64, blank=True)
    weight = models.PositiveSmallIntegerField(default=0)
    salt = models.CharField(max_length=32, blank=True)
    # When the router confirmed the values above (its `applied_at`); null until it has.
    updated_at = models.DateTimeField(default=clock.now, null=True)
    # The router's truth: the last call's outcome, and what it has not taken yet.
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    pending = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    alerted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.service}: {self.weight}% to {self.canary_version or '-'}"


class ServiceHooks(models.Model):
    """How to stop a service's canary and clear its cache: a command or a webhook each."""

    service = models.CharField(max_length=64, unique=True)
    stop_command = models.CharField(max_length=500, blank=True)
    stop_webhook = models.URLField(max_length=500, blank=True)
    clear_cache_command = models.CharField(max_length=500, blank=True)
    clear_cache_webhook = models.URLField(max_length=500, blank=True)

    history = tracked_history()

    class Meta:
        verbose_name_plural = "service hooks"

    def __str__(self) -> str:
        return self.service


class Segment(models.Model):
    """A user segment routed to the canary regardless of weight (all or a share of it)."""

    name = models.SlugField(max_length=40, unique=True)
    attribute = models.CharField(max_length=40, help_text="A field of the request's user.")
    value = models.JSONField(help_text="The value that puts a user in the segment.")
    share_pct = models.PositiveSmallIntegerField(default=100)
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    history = tracked_history()

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.share_pct}%)"


class MetricSample(models.Model):
    """Counts one service version's variant served over [start, end)."""

    service = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    variant = models.CharField(max_length=8, choices=Variant.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    requests = models.PositiveBigIntegerField()
    errors = models.PositiveBigIntegerField()
    status_4xx = models.PositiveBigIntegerField(default=0)
    status_5xx = models.PositiveBigIntegerField(default=0)
    latency_le = models.JSONField(null=True, blank=True)
    latency_counts = models.JSONField(null=True, blank=True)
    conversions = models.JSONField(null=True, blank=True)
    business = models.JSONField(null=True, blank=True)
    system = models.JSONField(null=True, blank=True)
    complaints = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["service", "variant", "end"], name="sample_window"),
            models.Index(fields=["service", "version", "variant", "end"], name="sample_version"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.version} {self.variant} {self.start:%H:%M:%S}"


class AbortRule(models.Model):
    """A condition on the canary's metrics that, held for a duration, rolls back or pauses."""

    class Metric(models.TextChoices):
        ERROR_RATE = "error_rate", "Error rate (errors / requests)"
        P95_LATENCY = "p95_latency_ms", "p95 latency (ms)"
        STATUS_5XX = "status_5xx_rate", "5xx rate"
        CONVERSION_DROP = "conversion_drop", "Conversion drop vs baseline (worst path)"
        DB_CONNECTIONS = "db_connections_pct", "DB connection pool (%)"
        MEMORY = "memory_pct", "Memory usage (%)"
        PAYMENT_FAILURE = "payment_failure_rate", "Payment failure rate"
        COMPLAINTS = "complaints", "Customer complaints (count in the window)"

    class Action(models.TextChoices):
        ROLLBACK = "rollback", "Immediate rollback"
        PAUSE = "pause", "Pause & alert"

    name = models.SlugField(max_length=40, unique=True)
    metric = models.CharField(max_length=30, choices=Metric.choices)
    operator = models.CharField(max_length=2, choices=[("ge", "≥"), ("gt", ">")], default="ge")
    threshold = models.FloatField()
    duration_s = models.PositiveIntegerField(help_text="How long the condition must hold.")
    window_s = models.PositiveIntegerField(
        default=60, help_text="Trailing window each evaluation computes the metric over."
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    stakeholders = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    history = tracked_history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RuleState(models.Model):
    """Where one abort rule stands for one rollout (Prometheus-style: ok/pending/firing)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="rule_states")
    rule = models.ForeignKey(AbortRule, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=RuleStatus.choices, default=RuleStatus.OK)
    since = models.DateTimeField(null=True, blank=True, help_text="When the condition began.")
    fired_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rollout", "rule"], name="rule_state_unique")
        ]

    def __str__(self) -> str:
        return f"{self.rule} {self.state}"


class MetricThreshold(models.Model):
    """Warning and critical levels of one figure of the comparison (the guide's tables)."""

    key = models.CharField(max_length=40, unique=True)
    warning = models.FloatField()
    critical = models.FloatField()
    higher_is_worse = models.BooleanField(default=True)

    history = tracked_history()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class AlertRoute(models.Model):
    """Who is alerted when a rollout pauses or rolls back on one metric (a gate's or an
    abort rule's): on-call, or a role's members. A metric with no route alerts on-call."""

    metric = models.CharField(
        max_length=40,
        help_text="A gate (requests, error_rate, p95_ms, throughput_rps), an abort rule's "
        "metric (payment_failure_rate, ...), margin, or metrics_source.",
    )
    audience = models.CharField(max_length=16, choices=Audience.choices)

    history = tracked_history()

    class Meta:
        ordering = ["metric", "audience"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "audience"], name="alert_route_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric} → {self.get_audience_display()}"


class ConversionTarget(models.Model):
    """A critical path's conversion baseline and the least acceptable rate."""

    path = models.CharField(max_length=200, unique=True)
    baseline = models.FloatField()
    min_acceptable = models.FloatField()

    history = tracked_history()

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class ComplaintReport(models.Model):
    """Customer complaints about a version, counted by support in the admin or the API."""

    service = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    count = models.PositiveIntegerField(default=1)
    at = models.DateTimeField(default=clock.now)
    note = models.TextField(blank=True)
    reported_by = models.CharField(max_length=150)

    class Meta:
        indexes = [models.Index(fields=["service", "version", "at"], name="complaint_window")]

    def __str__(self) -> str:
        return f"{self.count} complaint(s) about {self.service} {self.version}"


class MetricQuery(models.Model):
    """The PromQL that reads one figure from a service's Prometheus (blank service: the
    default for every service)."""

    service = models.CharField(
        max_length=64, blank=True, help_text="Blank: the default for every service."
    )
    metric = models.CharField(max_length=24, choices=MetricKey.choices)
    query = models.TextField(
        help_text="PromQL. {service}, {version} and {window} (e.g. 60s) are filled in; "
        "an empty answer, NaN or an error is no data."
    )
    description = models.CharField(max_length=200, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["metric", "service"]
        verbose_name_plural = "metric queries"
        constraints = [
            models.UniqueConstraint(fields=["service", "metric"], name="metric_query_unique")
        ]

    def __str__(self) -> str:
        return f"{self.metric} ({self.service or 'every service'})"

    def clean(self) -> None:
        if "{version}" not in self.query:
            raise ValidationError(
                {"query": "Name {version}: without it canary and stable read the same series."}
            )
        if self.service and not Service.objects.filter(name=self.service).exists():
            raise ValidationError({"service": f"No service named {self.service!r}."})
