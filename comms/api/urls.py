from django.urls import path

from comms.api import views

urlpatterns = [
    path("notices/", views.Notices.as_view(), name="notices"),
    path("notifications/", views.Notifications.as_view(), name="notifications"),
    path("incidents/", views.Incidents.as_view(), name="incidents"),
    path("incidents/<str:code>/updates/", views.IncidentUpdates.as_view(), name="incident-updates"),
    path("components/<str:code>/", views.ComponentDetail.as_view(), name="component"),
    path(
        "notifications/<int:pk>/read/", views.NotificationRead.as_view(), name="notification-read"
    ),
]
