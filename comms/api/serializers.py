"""The answers of the comms API as the contract shows them (documentation: the views build
them with `notice_json`, `notification_json` and the Statuspage v2 presenters)."""

from __future__ import annotations

from rest_framework import serializers

from comms.models import ComponentStatus, IncidentStatus


class NoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    template = serializers.CharField()
    release = serializers.IntegerField(allow_null=True)
    subject = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True)
    channels = serializers.ListField(child=serializers.CharField())
    send_at = serializers.DateTimeField()
    state = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    deliveries = serializers.JSONField()
    last_error = serializers.CharField(allow_null=True)


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    unread = serializers.BooleanField()
    notice = serializers.IntegerField(allow_null=True)


class ComponentSerializer(serializers.Serializer):
    """A status page component, in Statuspage's v2 shape."""

    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=ComponentStatus.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    position = serializers.IntegerField()
    description = serializers.CharField(allow_null=True)
    showcase = serializers.BooleanField()
    start_date = serializers.DateField()
    group_id = serializers.CharField(allow_null=True)
    page_id = serializers.CharField()
    group = serializers.BooleanField()
    only_show_if_degraded = serializers.BooleanField()
    components = serializers.ListField(child=serializers.CharField(), required=False)


class IncidentUpdateSerializer(serializers.Serializer):
    id = serializers.CharField()
    incident_id = serializers.CharField()
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    body = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    display_at = serializers.DateTimeField()
    affected_components = serializers.JSONField(allow_null=True)
    deliver_notifications = serializers.BooleanField()
    custom_tweet = serializers.CharField(allow_null=True)
    tweet_id = serializers.CharField(allow_null=True)


class IncidentSerializer(serializers.Serializer):
    """An incident, in Statuspage's v2 shape."""

    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    impact = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    monitoring_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    shortlink = serializers.CharField()
    page_id = serializers.CharField()
    components = ComponentSerializer(many=True)
    incident_updates = IncidentUpdateSerializer(many=True)
