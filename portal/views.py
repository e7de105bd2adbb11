"""Views of the portal itself: health probes and JSON 404s for machine paths."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from portal.health import FAIL, run_probe

_MACHINE_PREFIXES = ("/api/", "/ops/", "/health/")


@never_cache
@require_safe
def health(request: HttpRequest, probe: str) -> JsonResponse:
    status, results = run_probe(probe)
    return JsonResponse(
        {"status": status, "checks": {name: r.as_json() for name, r in results.items()}},
        status=503 if status == FAIL else 200,
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(_MACHINE_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
