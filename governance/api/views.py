from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import exceptions, generics

from governance.api.serializers import AuditEventSerializer
from governance.choices import Scope
from governance.models import AuditEvent
from portal.api import KeysetPagination


class AuditEventList(generics.ListAPIView):
    """Audit events, oldest first; `?release=ID` and `?action=` filter them."""

    serializer_class = AuditEventSerializer
    pagination_class = KeysetPagination
    required_scope = Scope.READ

    def get_queryset(self) -> QuerySet[AuditEvent]:
        queryset = AuditEvent.objects.all()
        release = self.request.query_params.get("release")
        if release:
            if not release.isdigit():
                raise exceptions.ValidationError({"release": ["Must be a release id."]})
            queryset = queryset.filter(release_id=int(release))
        action = self.request.query_params.get("action")
        if action:
            queryset = queryset.filter(action=action)
        return queryset
