from django.urls import path

from comms.api import views

urlpatterns = [
    path("notices/", views.Notices.as_view(), name="notices"),
    path("notifications/", views.Notifications.as_view(), name="notifications"),
    path(
        "notifications/<int:pk>/read/", views.NotificationRead.as_view(), name="notification-read"
    ),
]
