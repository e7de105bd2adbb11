from __future__ import annotations

from django.db import models


class RolloutState(models.TextChoices):
    RUNNING = "running"
    PAUSED = "paused"
    MONITORING = "monitoring"
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


# A service has at most one rollout in these states at a time.
ACTIVE_STATES = (
    RolloutState.RUNNING,
    RolloutState.PAUSED,
    RolloutState.MONITORING,
    RolloutState.ROLLING_BACK,
)
# The engine judges these and raises their weight.
LIVE_STATES = (RolloutState.RUNNING, RolloutState.MONITORING)
# Where a person's abort or an abort rule may start a rollback from.
ABORTABLE_STATES = (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.MONITORING)


class Verdict(models.TextChoices):
    HEALTHY = "healthy"
    WARNING = "warning"
    FAILING = "failing"
    INCONCLUSIVE = "inconclusive"


class PhaseVerdict(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    PROMOTED = "promoted"


class RollbackMode(models.TextChoices):
    INSTANT = "instant"
    GRADUAL = "gradual"


class StepStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"  # claimed by a worker, which records the result
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    # Claimed by a worker that died before recording a result: the step may or may not
    # have run, so it is not run again; on-call is told to check.
    INTERRUPTED = "interrupted"


# A step in one of these has a result; the rollback moves on.
FINISHED_STEPS = (
    StepStatus.OK,
    StepStatus.FAILED,
    StepStatus.TIMED_OUT,
    StepStatus.SKIPPED,
    StepStatus.INTERRUPTED,
)
# A rollback with one of these ends `aborted`, not `rolled_back`.
FAILED_STEPS = (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.INTERRUPTED)


class StepName(models.TextChoices):
    """The guide's rollback steps (set_weight: one step down of a gradual rollback)."""

    ROUTE_TO_STABLE = "route_to_stable"
    SET_WEIGHT = "set_weight"
    STOP_CANARY = "stop_canary"
    CLEAR_CANARY_CACHE = "clear_canary_cache"
    NOTIFY_ONCALL = "notify_oncall"
    INCIDENT_REPORT = "incident_report"


class RuleStatus(models.TextChoices):
    """Where an abort rule stands (Prometheus alerting semantics)."""

    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    NO_DATA = "no_data"


class Decision(models.TextChoices):
    """What the analysis asks the engine to do."""

    NONE = "none"
    PAUSE = "pause"
    ROLLBACK = "rollback"


class PromoteMode(models.TextChoices):
    MANUAL = "manual"
    AUTO = "auto"


class PauseKind(models.TextChoices):
    """Why a rollout is paused (`pause_reason.kind` in the API)."""

    RULE = "rule", "An abort rule with action pause fired"
    VALIDATION_FAILED = "validation_failed", "The phase's validation failed at its deadline"
    INCONCLUSIVE = "inconclusive", "Too little data after the phase's extension"
    METRICS_UNAVAILABLE = "metrics_unavailable", "The metrics source was unreachable"
    GATE = "gate", "A gate (webhook) held the rollout"
    MANUAL = "manual", "Paused by a person"


class OnFailedValidation(models.TextChoices):
    """What a plan does with a phase whose validation fails at its deadline."""

    PAUSE = "pause", "Pause and alert"
    ROLLBACK = "rollback", "Roll back"


class Audience(models.TextChoices):
    """Who hears about a rollout's decision on a metric: on-call (the alert channels), or
    the members holding a role (email and an in-app notification)."""

    ON_CALL = "on_call", "On-call (Slack, PagerDuty, ALERT_EMAILS)"
    FINANCE = "finance", "Finance team"
    COUNCIL = "council", "Council stewards"
    STEWARD = "steward", "Platform stewards"
    OPS = "ops", "Ops guardians"


class Event(models.TextChoices):
    """A rollout's audit actions (`rollout.<event>`)."""

    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    ADVANCED = "advanced"
    WEIGHT_APPLIED = "weight_applied"
    PHASE_EXTENDED = "phase_extended"
    AUTO_PROMOTE_SET = "auto_promote_set"
    FULL_PROMOTION_REQUESTED = "full_promotion_requested"
    FULL_PROMOTION_CONFIRMED = "full_promotion_confirmed"
    PROMOTED = "promoted"
    ROLLBACK_STARTED = "rollback_started"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_VERIFIED = "rollback_verified"


class VerificationResult(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


class Variant(models.TextChoices):
    CANARY = "canary"
    STABLE = "stable"


class PostRollbackKind(models.TextChoices):
    RCA = "root_cause_analysis", "Root cause analysis"
    POSTMORTEM = "incident_postmortem", "Incident postmortem"
    RUNBOOK = "update_runbook", "Update runbook"
    TEAM = "communicate_to_team", "Communicate to team"
    GOVERNANCE = "update_governance_docs", "Update governance documentation"


class MetricKey(models.TextChoices):
    """A figure a Prometheus source reads with one PromQL query (admin → Metric queries)."""

    REQUESTS = "requests", "Requests"
    ERRORS = "errors", "Errors"
    STATUS_4XX = "status_4xx", "4xx answers"
    STATUS_5XX = "status_5xx", "5xx answers"
    LATENCY = "latency_buckets", "Latency histogram buckets (le in seconds)"
    CHECKOUT_ATTEMPTS = "checkout_attempts", "Checkout attempts (by path)"
    CHECKOUT_SUCCESSES = "checkout_successes", "Checkout successes (by path)"
