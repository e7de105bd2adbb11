from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.models import AuditEvent


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
