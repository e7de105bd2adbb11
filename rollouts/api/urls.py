from django.urls import path

from rollouts.api import services, views

urlpatterns = [
    path("releases/<int:pk>/deploy/", views.Deploy.as_view(), name="release-deploy"),
    path("rollouts/", views.RolloutList.as_view(), name="rollout-list"),
    path("rollouts/<int:pk>/", views.RolloutDetail.as_view(), name="rollout-detail"),
    path("rollouts/<int:pk>/promote/", views.promote_view, name="rollout-promote"),
    path("rollouts/<int:pk>/pause/", views.pause_view, name="rollout-pause"),
    path("rollouts/<int:pk>/resume/", views.resume_view, name="rollout-resume"),
    path("rollouts/<int:pk>/abort/", views.abort_view, name="rollout-abort"),
    path("routing/decide", views.RoutingDecide.as_view(), name="routing-decide"),
    path("services/", services.ServiceList.as_view(), name="service-list"),
    path("metrics/", views.MetricsIngest.as_view(), name="metrics-ingest"),
]
