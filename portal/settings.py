"""Settings for the canary governance portal.

Twelve-factor: everything that differs between a laptop and production comes from
the environment, with embedded defaults that need neither PostgreSQL nor Redis.
A bad value raises ImproperlyConfigured at start instead of misbehaving later.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from portal.envconfig import env_bool, env_float, env_int, env_list, env_ports, env_str
from portal.logconfig import build_logging

BASE_DIR = Path(__file__).resolve().parent.parent

# Laptop defaults: a fresh checkout runs with no environment at all. Production sets
# DEBUG=0, which then requires SECRET_KEY and turns on the HTTPS hardening below.
DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only-key-do-not-deploy"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entry {_origin!r} must start with http:// or https://."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_structlog",
    "portal",
    "governance",
    "rollouts",
    "comms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.MachineAnswers",
    "portal.refusals.RefusedCallsGate",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "portal.logconfig.RequestIdHeaderMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "comms.context.unread_notifications",
            ],
        },
    },
]


def _parse_url(name: str, default: str, parser: str) -> dict:
    raw = env_str(name, default) or default
    try:
        return getattr(environ.Env, parser)(raw)
    except (KeyError, ValueError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name} is not a usable URL ({raw!r}): {exc}") from exc


DATABASES = {
    "default": _parse_url(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}", "db_url_config"
    )
}
if DATABASES["default"].get("ENGINE") not in (
    "django.db.backends.sqlite3",
    "django.db.backends.postgresql",
):
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// or sqlite:// URL.")
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 0, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
else:
    # IMMEDIATE makes SQLite take the write lock at BEGIN, so concurrent writers
    # queue up instead of failing halfway through a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL") or ""
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must be a redis:// URL.")

# The cache holds rate-limit counters only; with Redis down it fails open (portal.cache).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis when configured; without it tasks run in-process (eagerly).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or env_str("CELERY_BROKER_URL"))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
# A dead broker must not hang a request that enqueues work.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TIMEZONE = "UTC"
# Every periodic schedule of the product lives here.
CELERY_BEAT_SCHEDULE = {
    "audit-verify": {
        "task": "governance.tasks.audit_verify",
        "schedule": env_float("AUDIT_VERIFY_EVERY_S", 3600.0, above=0),
    },
    "canary-tick": {
        "task": "rollouts.tasks.tick",
        "schedule": env_float("CANARY_TICK_EVERY_S", 5.0, above=0),
    },
    "post-rollback-reminders": {
        "task": "rollouts.tasks.remind_overdue_actions",
        "schedule": 300.0,
    },
    "prune-metrics": {
        "task": "rollouts.tasks.prune_metrics",
        "schedule": 3600.0,
    },
    "status-publish": {"task": "comms.tasks.publish_status", "schedule": 300.0},
    "maintenance-tick": {"task": "comms.tasks.maintenance_tick", "schedule": 30.0},
    "notice-sweep": {"task": "comms.tasks.sweep_notices", "schedule": 60.0},
    "approvals-refresh": {
        "task": "governance.tasks.approvals_refresh",
        "schedule": env_float("APPROVALS_REFRESH_EVERY_S", 900.0, above=0),
    },
}

# EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, ... from one URL (smtp://, consolemail://, filemail://).
globals().update(_parse_url("EMAIL_URL", "consolemail://", "email_url_config"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "canary-portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_ADAPTER = "governance.accounts.MembersOnlyAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}

# Rate limits (portal.throttling), "N/s|m|h|d" each: calls refused with 401/403 per
# client address (then 429), subscription requests per client address and per email.
RATE_LIMITS = {
    "refused": env_str("RATE_LIMIT_REFUSED", "30/m") or "30/m",
    "subscribe_client": env_str("RATE_LIMIT_SUBSCRIBE_CLIENT", "20/h") or "20/h",
    "subscribe_address": env_str("RATE_LIMIT_SUBSCRIBE_ADDRESS", "3/h") or "3/h",
}
for _scope, _rate in RATE_LIMITS.items():
    _count, _, _period = _rate.partition("/")
    if not (_count.isdigit() and _period[:1] in ("s", "m", "h", "d")):
        raise ImproperlyConfigured(
            f"RATE_LIMIT_{_scope.upper()}={_rate!r} is not a rate such as 30/m (per s, m, h or d)."
        )
# How many reverse proxies (each adding itself to X-Forwarded-For) stand in front of the
# portal: 0 takes the socket's address; the client address of every rate limit.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Canary Portal")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["governance.permissions.ScopeAndRole"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.throttling.exception_handler",
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Request bodies under /api/ and /ops/: beyond this, 413 (a view may allow more with
# `max_body_bytes`, as the metrics ingest does).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# The largest body any view takes (the metrics ingest's 8 MiB); Django refuses more
# from its Content-Length before reading it.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 8 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Canary release governance portal",
    "DESCRIPTION": "Releases, gates, rollouts, kill switch, metrics and status page.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.schema.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": "governance.choices.Tier",
        "ComponentStatusEnum": "comms.models.ComponentStatus",
        "IncidentStatusEnum": "comms.models.IncidentStatus",
        "ItemStatusEnum": "governance.choices.ItemStatus",
        "ReleaseStateEnum": "governance.choices.ReleaseState",
        "RolloutStateEnum": "rollouts.choices.RolloutState",
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# HTTPS hardening: on by default whenever DEBUG is off (manage.py check --deploy).
_secure = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _secure)
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # probes speak plain HTTP inside the cluster
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _secure)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _secure)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _secure else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _secure)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# Health probes: URLs of the outside systems to probe; unset means "skipped".
HEALTH_EXTERNAL_URLS = env_list("HEALTH_EXTERNAL_URLS", [])
HEALTH_PAYMENTS_URL = env_str("HEALTH_PAYMENTS_URL") or ""
HEALTH_CHECK_TIMEOUT_S = env_float("HEALTH_CHECK_TIMEOUT_S", 3.0, above=0, at_most=3.0)

# Divides every duration of the domain (phases, rule windows, lead times) for demos.
CANARY_TIME_SCALE = env_float("CANARY_TIME_SCALE", 1.0, above=0)

# The demo of `make run` behind a real nginx (when one is installed): the directory of its
# nginx (configuration, pid, logs, the portal's include files in `canary/`), the ports
# nginx serves checkout and search on, and their upstreams' ports (checkout stable,
# checkout canary, search stable, search canary). A relative directory is under the project.
DEMO_DIR = str(BASE_DIR / (env_str("DEMO_DIR") or "var/demo"))
DEMO_NGINX_PORTS = env_ports("DEMO_NGINX_PORTS", [8081, 8082])
DEMO_UPSTREAM_PORTS = env_ports("DEMO_UPSTREAM_PORTS", [9101, 9102, 9103, 9104])
if set(DEMO_NGINX_PORTS) & set(DEMO_UPSTREAM_PORTS):
    raise ImproperlyConfigured("DEMO_NGINX_PORTS and DEMO_UPSTREAM_PORTS must not share a port.")

API_TOKEN_TOUCH_EVERY_S = 60

DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = env_bool("TRUST_UPSTREAM_REQUEST_ID", False)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
LOGGING = build_logging(
    level=env_str("LOG_LEVEL", "INFO") or "INFO",
    fmt=env_str("LOG_FORMAT", "json") or "json",
)

# Governance: council votes a high-tier release needs (risk rules may ask for more),
# and how long a vote stays valid before the release needs fresh ones.
COUNCIL_APPROVALS_HIGH_TIER = env_int("COUNCIL_APPROVALS_HIGH_TIER", 2, minimum=1)
APPROVAL_EXPIRY_DAYS = env_float("APPROVAL_EXPIRY_DAYS", 30.0, above=0)

# The audit chain's head is written here (outside the database) after every append;
# `verify_audit` compares the trail with it. A relative path is under the project.
AUDIT_ANCHOR_PATH = str(BASE_DIR / (env_str("AUDIT_ANCHOR_PATH") or "var/audit-anchor"))
# With a key, new events are chained with HMAC-SHA256 instead of plain SHA-256; earlier
# keys stay needed to verify the events they chained (AUDIT_PREVIOUS_KEYS, comma-separated).
AUDIT_KEY = env_str("AUDIT_KEY") or ""
AUDIT_PREVIOUS_KEYS = env_list("AUDIT_PREVIOUS_KEYS", [])
for _audit_key in [AUDIT_KEY, *AUDIT_PREVIOUS_KEYS]:
    if _audit_key and len(_audit_key) < 32:
        raise ImproperlyConfigured("AUDIT_KEY and AUDIT_PREVIOUS_KEYS need 32+ characters each.")

# Files the portal keeps for real routers (HAProxy's header map and server state), read
# by the router at start; a relative path is under the project.
ROUTER_FILES_DIR = str(BASE_DIR / (env_str("ROUTER_FILES_DIR") or "var/routers"))

# Rollouts: the traffic adapter, and the fewest canary requests a window needs to count.
# A router call that failed is retried with a backoff capped here.
ROUTER_RETRY_MAX_S = env_float("ROUTER_RETRY_MAX_S", 60.0, above=0)
# Where the engine reads window figures: by default each service from its own source
# (its Prometheus when `service_set --metrics prometheus`, else the push store).
CANARY_METRICS_SOURCE = env_str(
    "CANARY_METRICS_SOURCE", "rollouts.metrics.selection.ServiceSources"
)
# Prometheus: every query's timeout, and how often it scrapes the services (a window is
# never shorter than four scrape intervals: increase() needs two samples in it).
PROMETHEUS_TIMEOUT_S = env_float("PROMETHEUS_TIMEOUT_S", 3.0, above=0, at_most=30.0)
PROMETHEUS_SCRAPE_INTERVAL_S = env_float("PROMETHEUS_SCRAPE_INTERVAL_S", 15.0, above=0)
# How long a tick waits for the rollback steps it hands to worker threads.
CANARY_ROLLBACK_WAIT_S = env_float("CANARY_ROLLBACK_WAIT_S", 1.0, above=0)
CANARY_MIN_REQUESTS = env_int("CANARY_MIN_REQUESTS", 100, minimum=1)
# Raw metric samples are kept this long (at least the comparison's 24 h window).
METRICS_RETENTION_DAYS = env_float("METRICS_RETENTION_DAYS", 30.0, above=1.0)

# The public status page: where its snapshot is written, and what it calls itself.
STATUS_SNAPSHOT_DIR = env_str("STATUS_SNAPSHOT_DIR") or str(BASE_DIR / "var" / "status")
STATUS_PAGE_ID = env_str("STATUS_PAGE_ID", "canary-portal") or "canary-portal"
STATUS_PAGE_NAME = env_str("STATUS_PAGE_NAME", "Codex Dominion") or "Codex Dominion"
STATUS_PAGE_URL = env_str("STATUS_PAGE_URL", "http://127.0.0.1:8000") or "http://127.0.0.1:8000"

# Customer notices: who gets the email channel, and where the webhook channels post
# (NOTICE_WEBHOOKS="blog=https://...,twitter=https://...").
CUSTOMER_NOTICE_EMAILS = env_list("CUSTOMER_NOTICE_EMAILS", [])
NOTICE_WEBHOOKS = dict(
    item.split("=", 1) for item in env_list("NOTICE_WEBHOOKS", []) if "=" in item
)

# Alert channels for stewards and on-call (unset → that channel is skipped).
SLACK_WEBHOOK_URL = env_str("SLACK_WEBHOOK_URL") or ""
SLACK_CHANNEL = env_str("SLACK_CHANNEL", "#codex-alerts") or "#codex-alerts"
PAGERDUTY_ROUTING_KEY = env_str("PAGERDUTY_ROUTING_KEY") or ""
PAGERDUTY_EVENTS_URL = env_str("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com") or ""
ALERT_EMAILS = env_list("ALERT_EMAILS", [])
