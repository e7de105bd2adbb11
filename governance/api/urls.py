from django.urls import path

from governance.api import views

urlpatterns = [
    path("releases/", views.ReleaseList.as_view(), name="release-list"),
    path("releases/<int:pk>/", views.ReleaseDetail.as_view(), name="release-detail"),
    path("releases/<int:pk>/gate/", views.ReleaseGate.as_view(), name="release-gate"),
    path(
        "releases/<int:pk>/checklist/<str:key>/",
        views.ChecklistSignOff.as_view(),
        name="release-checklist-item",
    ),
    path("releases/<int:pk>/votes/", views.ReleaseVotes.as_view(), name="release-votes"),
    path("audit/", views.AuditEventList.as_view(), name="audit-list"),
]
