from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.choices import ChangeType, Decision, ItemStatus, Tier
from governance.models import AuditEvent, Release, Service
from portal.strict import StrictSerializer


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="seq", read_only=True)
    release = serializers.IntegerField(source="release_id", allow_null=True, read_only=True)
    # The metaclass takes declared fields off the class, so this does not shadow `.data`.
    data = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "release",
            "data",
            "prev_hash",
            "hash",
        ]

    def get_data(self, event: AuditEvent) -> dict[str, Any]:
        return event.data


_SERVICE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"


class ReleaseWriteSerializer(StrictSerializer):
    service = serializers.RegexField(_SERVICE, max_length=64)
    version = serializers.RegexField(_VERSION, max_length=64)
    tier = serializers.ChoiceField(choices=Tier.choices)
    changed_paths = serializers.ListField(
        child=serializers.CharField(max_length=500), max_length=10_000, default=list
    )
    change_types = serializers.ListField(
        child=serializers.ChoiceField(choices=ChangeType.choices), max_length=20, default=list
    )
    changelog = serializers.CharField(max_length=50_000, allow_blank=True, default="")
    rollback_plan = serializers.CharField(max_length=50_000, allow_blank=True, default="")

    def validate_service(self, value: str) -> str:
        if not Service.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"Unknown service: {value}.")
        return value


class ReleasePatchSerializer(ReleaseWriteSerializer):
    """PATCH: service is fixed; everything else optional."""

    service = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, partial=True, **kwargs)


class ReleaseSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by_name", read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "service",
            "version",
            "declared_tier",
            "tier",
            "risk",
            "matched_rules",
            "notice_required",
            "state",
            "created_by",
            "changed_paths",
            "change_types",
            "changelog",
            "rollback_plan",
            "approvals_required",
            "revision",
            "created_at",
            "updated_at",
            "deployed_at",
        ]


class SignOffSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    evidence_url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, allow_null=True, default=""
    )
    note = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")

    def validate_evidence_url(self, value: str | None) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise serializers.ValidationError("Use an http(s) URL.")
        return value or ""


class VoteSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    comment = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


# Answers, as the contract shows them (what the OpenAPI schema documents and schemathesis
# checks the live answers against).


class ChecklistItemSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    section = serializers.CharField()
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    signer_roles = serializers.ListField(child=serializers.CharField())
    signed_by = serializers.CharField(allow_null=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    evidence_url = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_blank=True)


class VoteViewSerializer(serializers.Serializer):
    voter = serializers.CharField()
    decision = serializers.ChoiceField(choices=Decision.choices)
    comment = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()
    stale = serializers.BooleanField()
    stale_reason = serializers.CharField(allow_null=True)


class ApprovalsSerializer(serializers.Serializer):
    required = serializers.IntegerField()  # type: ignore[assignment]
    approvals = serializers.IntegerField()
    rejections = serializers.IntegerField()
    votes = VoteViewSerializer(many=True)


class GateSerializer(serializers.Serializer):
    ready = serializers.BooleanField()
    blocking = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    checklist = ChecklistItemSerializer(many=True)
    approvals = ApprovalsSerializer()


class ReleaseWithGateSerializer(ReleaseSerializer):
    gate = GateSerializer(read_only=True)

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "gate"]
