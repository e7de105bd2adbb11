"""Visitors are served the published snapshot: files, no database, cache headers, ETags."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_safe

from comms.models import Notification
from comms.snapshot import publish, snapshot_dir
from portal import clock

CACHE = "public, max-age=30, stale-while-revalidate=60, stale-if-error=86400"
TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".atom": "application/atom+xml",
}


def _serve(request: HttpRequest, relative: str) -> HttpResponseBase:
    path = snapshot_dir() / relative
    if not path.is_file():
        try:
            publish()  # the first visitor after a fresh install
        except Exception:
            return JsonResponse({"detail": "The status page is not published yet."}, status=503)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return JsonResponse({"detail": "Not found."}, status=404)
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponseBase = HttpResponse(status=304)
    else:
        response = FileResponse(path.open("rb"), content_type=TYPES[Path(relative).suffix])
    response["ETag"] = etag
    response["Cache-Control"] = CACHE
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_safe
def status_page(request: HttpRequest) -> HttpResponseBase:
    return _serve(request, "index.html")


@require_safe
def status_feed(request: HttpRequest) -> HttpResponseBase:
    return _serve(request, "feed.atom")


@require_safe
def status_api(request: HttpRequest, name: str) -> HttpResponseBase:
    return _serve(request, f"api/v2/{name}.json")


@login_required
def notifications_page(request: HttpRequest) -> HttpResponse:
    """The member's notifications; opening the page marks them read."""
    notes = list(Notification.objects.filter(user_id=int(request.user.pk or 0))[:100])
    response = render(request, "comms/notifications.html", {"notes": notes})
    Notification.objects.filter(user_id=int(request.user.pk or 0), read_at=None).update(
        read_at=clock.now()
    )
    return response
