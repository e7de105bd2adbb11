from django.urls import path

from governance.api import views

urlpatterns = [
    path("audit/", views.AuditEventList.as_view(), name="audit-list"),
]
