from __future__ import annotations

import uuid

from django.db import models

from governance.history import tracked_history
from portal import clock


def _page_id() -> str:
    return uuid.uuid4().hex[:12]


class ComponentStatus(models.TextChoices):
    OPERATIONAL = "operational", "Operational"
    DEGRADED = "degraded_performance", "Degraded performance"
    PARTIAL = "partial_outage", "Partial outage"
    MAJOR = "major_outage", "Major outage"
    MAINTENANCE = "under_maintenance", "Under maintenance"


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"


class Impact(models.TextChoices):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class MaintenanceStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"


class Component(models.Model):
    """A part of the product shown on the status page (or a group of such parts)."""

    code = models.CharField(max_length=12, unique=True, default=_page_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=24, choices=ComponentStatus.choices, default=ComponentStatus.OPERATIONAL
    )
    position = models.PositiveSmallIntegerField(default=0)
    group = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
        limit_choices_to={"is_group": True},
    )
    is_group = models.BooleanField(default=False)
    showcase = models.BooleanField(default=True)
    only_show_if_degraded = models.BooleanField(default=False)
    services = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated release services this component stands for.",
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    history = tracked_history()

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Incident(models.Model):
    """Something that hurts users, told on the status page with a timeline of updates."""

    code = models.CharField(max_length=12, unique=True, default=_page_id, editable=False)
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING
    )
    impact = models.CharField(max_length=10, choices=Impact.choices, default=Impact.MINOR)
    components = models.ManyToManyField(Component, blank=True, related_name="incidents")
    rollout = models.ForeignKey(
        "rollouts.Rollout",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
    )
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(default=clock.now)
    monitoring_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class IncidentUpdate(models.Model):
    """One entry of an incident's timeline."""

    code = models.CharField(max_length=12, unique=True, default=_page_id, editable=False)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    status = models.CharField(max_length=16, choices=IncidentStatus.choices)
    body = models.TextField()
    affected_components = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    display_at = models.DateTimeField(default=clock.now)
    # The customer notice this update posted (its `status_page` channel), at most one each.
    notice = models.OneToOneField(
        "comms.Notice",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="status_update",
    )

    class Meta:
        ordering = ["-display_at", "-id"]

    def __str__(self) -> str:
        return f"{self.incident}: {self.status}"


class Maintenance(models.Model):
    """Planned work: its components are under maintenance from start to end."""

    code = models.CharField(max_length=12, unique=True, default=_page_id, editable=False)
    name = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=MaintenanceStatus.choices, default=MaintenanceStatus.SCHEDULED
    )
    components = models.ManyToManyField(Component, blank=True, related_name="maintenances")
    scheduled_for = models.DateTimeField()
    scheduled_until = models.DateTimeField()
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = tracked_history()

    class Meta:
        ordering = ["scheduled_for", "id"]

    def __str__(self) -> str:
        return self.name


class MessageTemplate(models.Model):
    """A customer message of the guide, with `[PLACEHOLDER]`s, channels and lead time."""

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    channels = models.JSONField(default=list, help_text='e.g. ["email", "in_app"]')
    lead_time_s = models.PositiveIntegerField(default=0, help_text="Advance notice needed.")

    history = tracked_history()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Notice(models.Model):
    """A message rendered from a template, sent once on its channels."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    release = models.ForeignKey(
        "governance.Release",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notices",
    )
    variables = models.JSONField(default=dict)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    channels = models.JSONField(default=list)
    send_at = models.DateTimeField(default=clock.now)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # channel → "sent" | "skipped: why"; a retry only tries the channels not yet sent.
    deliveries = models.JSONField(default=dict)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.subject


class Notification(models.Model):
    """An in-app notification for one member."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="notifications")
    notice = models.ForeignKey(
        Notice, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    title = models.CharField(max_length=300)
    body = models.TextField()
    created_at = models.DateTimeField(default=clock.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Subscriber(models.Model):
    """A status-page visitor's email subscription (double opt-in), optionally per component."""

    email = models.EmailField(unique=True)
    components = models.ManyToManyField(
        Component, blank=True, related_name="subscribers", help_text="None chosen: every component."
    )
    created_at = models.DateTimeField(default=clock.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.email


class SubscriberDelivery(models.Model):
    """One incident update sent to one subscriber; the unique row is the send's claim."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    update = models.ForeignKey(IncidentUpdate, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "update"], name="delivery_once")
        ]

    def __str__(self) -> str:
        return f"{self.update_id} to {self.subscriber_id}"
