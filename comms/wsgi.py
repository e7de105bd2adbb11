"""The status page's published files served in front of Django, at the WSGI level.

Visitors read the snapshot the publisher writes (comms/snapshot.py); serving it needs no
session, user, database or template, so it does not pass Django's middleware. The answer
carries what the Django view and its middleware would send (content type, ETag from the
file's mtime and size, cache and CORS headers, the security headers, a request id), so a
visitor sees no difference; with nginx in front (deploy/nginx.conf) the same files are
served by nginx instead. Anything else, and a file not yet published, goes to Django.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = structlog.get_logger(__name__)
_enabled = logging.getLogger(__name__).isEnabledFor

CACHE = "public, max-age=30, stale-while-revalidate=60, stale-if-error=86400"
TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".atom": "application/atom+xml",
}
# The public v2 documents (as in portal/urls.py and deploy/nginx.conf).
DOCUMENTS = (
    "summary",
    "status",
    "components",
    "incidents",
    "incidents/unresolved",
    "scheduled-maintenances",
    "scheduled-maintenances/upcoming",
    "scheduled-maintenances/active",
)
FILES = {
    "/status/": "index.html",
    "/status/feed.atom": "feed.atom",
    **{f"/api/v2/{name}.json": f"api/v2/{name}.json" for name in DOCUMENTS},
}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def etag(stat: os.stat_result) -> str:
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


def security_headers(secure: bool) -> list[tuple[str, str]]:
    """What Django's SecurityMiddleware and XFrameOptionsMiddleware add to a response."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.X_FRAME_OPTIONS:
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    if secure and settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    return headers


class StatusFiles:
    """WSGI middleware: GET/HEAD of a published status file is answered here. The bytes of
    each file are kept while the file on disk is the same one (the publisher replaces
    files, so a new version has a new inode and mtime); one stat() per visitor."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application
        hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not hosts:
            hosts = [".localhost", "127.0.0.1", "[::1]"]
        self.hosts = hosts
        self.secure_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        self.extra = {
            secure: [
                ("Cache-Control", CACHE),
                ("Access-Control-Allow-Origin", "*"),
                *security_headers(secure),
            ]
            for secure in (False, True)
        }
        self.files: dict[str, tuple[tuple[int, int, int], str, bytes]] = {}

    def _secure(self, environ: dict[str, Any]) -> bool:
        if self.secure_header:
            header, value = self.secure_header
            return environ.get(header, "").split(",")[0].strip() == value
        return environ.get("wsgi.url_scheme") == "https"

    def _ours(self, environ: dict[str, Any]) -> tuple[str, bool] | None:
        """The file to serve and whether the request is secure, or None for Django: other
        paths and methods, hosts Django would refuse, plain HTTP it would redirect."""
        relative = FILES.get(environ.get("PATH_INFO", ""))
        if relative is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        domain, _ = split_domain_port(host)
        if not domain or not validate_host(domain, self.hosts):
            return None
        secure = self._secure(environ)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        return os.path.join(settings.STATUS_SNAPSHOT_DIR, relative), secure

    def _read(self, path: str) -> tuple[str, bytes] | None:
        """The file's ETag and bytes, or None when it is not there."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self.files.get(path)
        if cached is not None and cached[0] == identity:
            return cached[1], cached[2]
        try:
            with open(path, "rb") as stream:
                content = stream.read()
                stat = os.fstat(stream.fileno())
        except OSError:
            return None
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        self.files[path] = (identity, etag(stat), content)
        return etag(stat), content

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = self._ours(environ)
        if found is None:
            return self.application(environ, start_response)
        path, secure = found
        read = self._read(path)
        if read is None:  # not published yet: the view publishes, or answers 503
            return self.application(environ, start_response)
        tag, content = read
        headers = [
            ("ETag", tag),
            *self.extra[secure],
            ("X-Request-ID", environ.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4())),
        ]
        if tag in environ.get("HTTP_IF_NONE_MATCH", ""):
            status, body = "304 Not Modified", b""
        else:
            name = os.path.basename(path)
            status, body = "200 OK", content
            headers += [
                ("Content-Type", TYPES[os.path.splitext(name)[1]]),
                ("Content-Length", str(len(content))),
                ("Content-Disposition", f'inline; filename="{name}"'),
            ]
        if _enabled(logging.DEBUG):
            logger.debug("status_read", path=environ["PATH_INFO"], status=status[:3])
        start_response(status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
