"""What the rollout actions take (request bodies, strictly parsed)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from portal.strict import StrictSerializer
from rollouts.choices import RollbackMode


class DeploySerializer(StrictSerializer):
    plan = serializers.ChoiceField(choices=["standard", "high_risk"], required=False)
    stable_version = serializers.CharField(max_length=64, required=False, allow_blank=True)


class PromoteSerializer(StrictSerializer):
    mode = serializers.ChoiceField(choices=["manual", "auto"], default="manual")
    confirmed = serializers.BooleanField(default=False)
    full = serializers.BooleanField(
        default=False, help_text="Straight to 100%: needs a second member within 15 minutes."
    )
    approver = serializers.CharField(
        max_length=151,
        required=False,
        allow_blank=True,
        default="",
        help_text="With full: the only member who may confirm (@name or name).",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["full"] and data["mode"] != "manual":
            raise serializers.ValidationError({"full": ["A full promotion is manual."]})
        if data["approver"] and not data["full"]:
            raise serializers.ValidationError(
                {"approver": ["approver names the second member of a full promotion (full)."]}
            )
        return data


class PauseSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AbortSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False)
    confirmed = serializers.BooleanField()
    operator = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=RollbackMode.choices, default=RollbackMode.INSTANT)

    def validate_confirmed(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("An abort must be confirmed: true.")
        return value


class KillSwitchSerializer(AbortSerializer):
    version = serializers.CharField(max_length=64)
    service = serializers.CharField(max_length=64, required=False)
    mode = None  # type: ignore[assignment]  # the kill switch is always instant
