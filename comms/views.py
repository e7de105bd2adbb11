"""Visitors are served the published snapshot: files, no database, cache headers, ETags
(under gunicorn, comms.wsgi.StatusFiles answers first; these views serve what it leaves)."""

from __future__ import annotations

import math
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from comms import subscriptions
from comms.models import Notification
from comms.snapshot import publish, snapshot_dir
from comms.wsgi import CACHE, TYPES, etag
from portal import clock
from portal.throttling import RateThrottle, SubscriptionsByAddress, SubscriptionsByClient


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
    tag = etag(stat)
    if tag in request.headers.get("If-None-Match", ""):
        response: HttpResponseBase = HttpResponse(status=304)
    else:
        response = FileResponse(path.open("rb"), content_type=TYPES[Path(relative).suffix])
    response["ETag"] = tag
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


# The status page is static HTML, so its form carries no CSRF token; a subscription does
# nothing until the address owner opens the emailed link.
@csrf_exempt
@require_POST
def subscribe_view(request: HttpRequest) -> HttpResponse:
    # Each accepted request mails a confirmation: limited per client and per address.
    by_client = SubscriptionsByClient()
    if not by_client.allows(request):
        return _too_many(request, by_client)
    email = request.POST.get("email", "").strip()
    try:
        validate_email(email)
    except ValidationError:
        return render(
            request,
            "comms/subscription.html",
            {"message": "That is not an email address."},
            status=400,
        )
    by_address = SubscriptionsByAddress()
    if not by_address.allows(request):
        return _too_many(request, by_address)
    subscriptions.subscribe(email, request.POST.getlist("component"))
    return render(
        request,
        "comms/subscription.html",
        {"message": "Check your inbox: open the link we sent to confirm."},
    )


def _too_many(request: HttpRequest, throttle: RateThrottle) -> HttpResponse:
    wait = throttle.wait_seconds()
    response = render(
        request,
        "comms/subscription.html",
        {
            "message": "Too many subscription requests: try again in "
            f"{math.ceil(wait / 60)} minute{'s' if wait > 60 else ''}."
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@require_safe
def confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = subscriptions.from_token(token, "confirm")
    if subscriber is None:
        return render(
            request,
            "comms/subscription.html",
            {"message": "This link is invalid or has expired."},
            status=400,
        )
    subscriptions.confirm(subscriber)
    return render(
        request,
        "comms/subscription.html",
        {"message": f"Subscribed: {subscriber.email} will get status updates."},
    )


@require_safe
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = subscriptions.from_token(token, "unsubscribe")
    if subscriber is not None:
        subscriber.delete()
    return render(
        request,
        "comms/subscription.html",
        {"message": "Unsubscribed: no more status updates will be sent."},
    )
