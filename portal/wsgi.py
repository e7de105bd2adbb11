"""The portal's WSGI application: the published status page is served before Django's
middleware (comms.wsgi.StatusFiles), everything else by Django."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_application = get_wsgi_application()

from comms.wsgi import StatusFiles  # noqa: E402  (needs the settings configured above)

application = StatusFiles(django_application)
