from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from comms import views as comms_views
from portal import views
from portal.api import ApiRoot
from portal.health import PROBES
from rollouts.api.views import CanaryMetrics, KillSwitch
from rollouts.dashboard import rollout_dashboard

# Admin sign-in goes through allauth, so MFA applies to the admin too.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = "Canary release governance"
admin.site.site_title = "Canary portal"

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRoot.as_view(), name="root"),
    path("", include("governance.api.urls")),
    path("", include("rollouts.api.urls")),
    path("", include("comms.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    re_path(rf"^health/(?P<probe>{'|'.join(PROBES)})$", views.health, name="health"),
    path("ops/canary/abort", KillSwitch.as_view(), name="kill-switch"),
    path("ops/canary/metrics", CanaryMetrics.as_view(), name="canary-metrics"),
    path("rollouts/<int:pk>/dashboard/", rollout_dashboard, name="rollout-dashboard"),
    path("notifications/", comms_views.notifications_page, name="notifications-page"),
    path("status/", comms_views.status_page, name="status-page"),
    path("status/feed.atom", comms_views.status_feed, name="status-feed"),
    path("status/subscriptions/", comms_views.subscribe_view, name="status-subscribe"),
    path(
        "status/subscriptions/confirm/<str:token>/",
        comms_views.confirm_view,
        name="status-subscribe-confirm",
    ),
    path(
        "status/subscriptions/unsubscribe/<str:token>/",
        comms_views.unsubscribe_view,
        name="status-unsubscribe",
    ),
    re_path(
        r"^api/v2/(?P<name>summary|status|components|incidents|incidents/unresolved|"
        r"scheduled-maintenances|scheduled-maintenances/upcoming|"
        r"scheduled-maintenances/active)\.json$",
        comms_views.status_api,
        name="status-api",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "portal.views.not_found"
