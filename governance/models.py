from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models

from governance.choices import (
    ChangeType,
    ChecklistKey,
    Decision,
    ItemStatus,
    MetricsSource,
    ReleaseState,
    Risk,
    RouterKind,
    Section,
    Tier,
)
from governance.history import tracked_history
from portal import clock


class ApiToken(models.Model):
    """An API token: acts as its user within its scopes; only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = tracked_history(excluded_fields=["last_used_at"])

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user}, {self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditEvent(models.Model):
    """One entry of the append-only audit trail, chained to the one before by its hash."""

    seq = models.PositiveBigIntegerField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, help_text="Username, or 'system'.")
    # Not a foreign key: the trail must outlive users and never be rewritten by a cascade.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    release_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # Canonical JSON exactly as hashed, so verification never depends on a JSON round trip.
    data_json = models.TextField(default="{}")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Empty: the hash is plain SHA-256. Otherwise the id of the AUDIT_KEY whose
    # HMAC-SHA256 chained this event (hashed with the event, so it cannot be swapped).
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Audit events are append-only.")

    @property
    def data(self) -> Any:
        return json.loads(self.data_json)


class Service(models.Model):
    """A deployable service: its modules, its stable and canary URLs, its router and metrics."""

    name = models.CharField(max_length=64, unique=True)
    modules = models.JSONField(default=list, blank=True, help_text="Glob patterns of its paths.")
    stable_url = models.URLField(max_length=500, blank=True)
    canary_url = models.URLField(max_length=500, blank=True)
    router = models.CharField(
        max_length=16, choices=RouterKind.choices, default=RouterKind.EMBEDDED
    )
    # The router's own settings: superusers and the command line only.
    listen = models.CharField(
        max_length=255, blank=True, help_text="HOST:PORT the router serves the service on."
    )
    nginx_dir = models.CharField(
        "nginx dir", max_length=500, blank=True, help_text="Where the portal writes NAME.conf."
    )
    reload_command = models.CharField(
        max_length=500, blank=True, help_text="Run without a shell; default `nginx -s reload`."
    )
    haproxy_socket = models.CharField(
        "HAProxy socket", max_length=500, blank=True, help_text="Runtime API: PATH or HOST:PORT."
    )
    metrics = models.CharField(
        max_length=16, choices=MetricsSource.choices, default=MetricsSource.PUSH
    )
    # Not a URLField: Django's URL check refuses one-label hosts (http://prometheus:9090);
    # rollouts.metrics.selection checks it instead, for service_set and the admin alike.
    prometheus_url = models.CharField(
        "Prometheus URL",
        max_length=500,
        blank=True,
        help_text="Where metrics=prometheus reads, e.g. http://prometheus:9090.",
    )
    smoke_urls = models.JSONField(default=list, blank=True, editable=False)
    webhooks = models.JSONField(default=dict, blank=True, editable=False)
    staging = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )

    history = tracked_history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Release(models.Model):
    """A version of a service proposed for canary deployment, and what governs it."""

    service = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    declared_tier = models.CharField("declared tier", max_length=8, choices=Tier.choices)
    tier = models.CharField(
        "effective tier",
        max_length=8,
        choices=Tier.choices,
        help_text="High whenever a changed path touches a critical module.",
    )
    risk = models.CharField(max_length=8, choices=Risk.choices)
    changed_paths = models.JSONField(default=list, blank=True)
    change_types = models.JSONField(default=list, blank=True)
    changelog = models.TextField(blank=True)
    rollback_plan = models.TextField(blank=True)
    matched_rules = models.JSONField(default=list, blank=True, editable=False)
    approvals_required = models.PositiveSmallIntegerField(default=0, editable=False)
    notice_required = models.BooleanField(default=False, editable=False)
    state = models.CharField(
        max_length=20,
        choices=ReleaseState.choices,
        default=ReleaseState.PENDING_APPROVAL,
        db_index=True,
    )
    # Bumped whenever the version, changed paths or rollback plan change: votes cast
    # on an earlier revision are stale.
    revision = models.PositiveIntegerField(default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="releases"
    )
    created_by_name = models.CharField(max_length=150, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)
    deployed_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = tracked_history()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "version"], name="release_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.version}"

    @property
    def is_deployed(self) -> bool:
        return self.state == ReleaseState.DEPLOYED


class RiskRule(models.Model):
    """A path pattern that marks a module as risky, and what a release touching it needs."""

    pattern = models.CharField(
        max_length=200,
        unique=True,
        help_text="Glob as in CODEOWNERS: * stays within a directory, ** crosses them.",
    )
    risk = models.CharField(max_length=8, choices=Risk.choices, default=Risk.CRITICAL)
    approvals_required = models.PositiveSmallIntegerField(default=2)
    extra_checks = models.JSONField(
        default=list, blank=True, help_text="Checklist keys a matching release also needs."
    )
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    history = tracked_history()

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return self.pattern


class ChecklistTemplate(models.Model):
    """A checklist item of the guide, and when a release needs it."""

    key = models.CharField(max_length=40, unique=True, choices=ChecklistKey.choices)
    label = models.CharField(max_length=100)
    section = models.CharField(max_length=20, choices=Section.choices)
    signer_roles = models.JSONField(default=list)
    tiers = models.JSONField(
        default=list, blank=True, help_text="Effective tiers that always need this item."
    )
    when_notice_required = models.BooleanField(
        default=False, help_text="Needed when the release's change types require a notice."
    )
    when_high_risk = models.BooleanField(
        default=False, help_text="Needed when the release touches a critical module."
    )
    position = models.PositiveSmallIntegerField(default=0)

    history = tracked_history()

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.key


class NoticePolicy(models.Model):
    """Whether a change type requires a customer notice (the guide's two lists)."""

    change_type = models.CharField(max_length=40, unique=True, choices=ChangeType.choices)
    requires_notice = models.BooleanField()

    history = tracked_history()

    class Meta:
        verbose_name_plural = "notice policy"
        ordering = ["change_type"]

    def __str__(self) -> str:
        return f"{self.change_type}: {'notice' if self.requires_notice else 'no notice'}"


class ChecklistItem(models.Model):
    """One checklist item of one release: who may sign it, and who did."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=40, choices=ChecklistKey.choices)
    label = models.CharField(max_length=100)
    section = models.CharField(max_length=20, choices=Section.choices)
    signer_roles = models.JSONField(default=list)
    position = models.PositiveSmallIntegerField(default=0)
    # Items stay when a change makes them unnecessary, so their sign-offs stay visible.
    required = models.BooleanField(default=True)
    status = models.CharField(max_length=8, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    signed_by_name = models.CharField(max_length=150, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["position", "key"]
        constraints = [
            models.UniqueConstraint(fields=["release", "key"], name="checklist_item_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.release}: {self.key} {self.status}"


class Vote(models.Model):
    """A council member's current vote on a release (a new vote replaces it)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="votes"
    )
    voter_name = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    cast_at = models.DateTimeField(default=clock.now)
    revision = models.PositiveIntegerField(help_text="The release revision this vote was cast on.")

    history = tracked_history()

    class Meta:
        ordering = ["cast_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["release", "voter"], name="vote_one_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.voter_name} {self.decision}s {self.release}"
