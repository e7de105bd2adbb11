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
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"


class Variant(models.TextChoices):
    CANARY = "canary"
    STABLE = "stable"


class PostRollbackKind(models.TextChoices):
    RCA = "root_cause_analysis", "Root cause analysis"
    POSTMORTEM = "incident_postmortem", "Incident postmortem"
    RUNBOOK = "update_runbook", "Update runbook"
    TEAM = "communicate_to_team", "Communicate to team"
    GOVERNANCE = "update_governance_docs", "Update governance documentation"
