"""Django settings: everything comes from the environment, with embedded-mode defaults.

See ``docs/operations.md`` for the full list of variables.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from infra.auth.providers import PIPELINE as SOCIAL_PIPELINE
from infra.auth.providers import Provider
from infra.auth.providers import from_environment as social_providers
from infra.auth.secret_key import PLACEHOLDER, installation_key
from infra.observability import context as observability_context
from infra.observability import errors as error_reports
from infra.postgres.connection import DEFAULT_URL, database_from_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DESKSTREAM_DEBUG", False)
DEMO_MODE = env_bool("DESKSTREAM_DEMO", False)
SECRET_KEY = os.environ.get("DESKSTREAM_SECRET_KEY", "")
if SECRET_KEY == PLACEHOLDER and not DEMO_MODE:
    raise RuntimeError(
        "DESKSTREAM_SECRET_KEY is the placeholder of .env.example: set a long random string."
    )
if not SECRET_KEY:
    if not (DEBUG or DEMO_MODE or os.environ.get("PYTEST_VERSION")):
        raise RuntimeError("Set DESKSTREAM_SECRET_KEY (any long random string).")
    # Embedded, DEBUG and test modes: this installation's random key (infra/auth/secret_key.py).
    SECRET_KEY = installation_key(
        Path(os.environ.get("DESKSTREAM_SECRET_KEY_FILE") or BASE_DIR / "var" / "secret_key")
    )


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated variable as its items, each stripped, empty ones dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ALLOWED_HOSTS = env_list("DESKSTREAM_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # Social sign-in (ADR 0038): the sign-in flow's server-side session (state, nonce, PKCE
    # verifier) and social-auth's tables (linked provider accounts, single-use nonces).
    "django.contrib.sessions",
    "social_django",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django.contrib.postgres",
    "infra.auth.apps.AccountsConfig",
    "infra.postgres.apps.ReadModelsConfig",
    "infra.email.apps.EmailConfig",
    "infra.automation.apps.AutomationConfig",
    "infra.kafka.apps.KafkaConfig",
    "infra.ratelimit.apps.RateLimitConfig",
    "infra.llm.apps.DraftsConfig",
    "command_api.apps.CommandApiConfig",
    "cli.apps.CliConfig",
]

MIDDLEWARE = [
    "infra.server.middleware.SyncSecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "infra.server.middleware.SyncCommonMiddleware",
]

# Security headers (infra/server/middleware.py). The policy allows no inline script and no
# script from elsewhere: the web app and the API docs (Swagger UI, its init script served
# at /api/docs/?script=) load theirs from this origin. Inline styles stay allowed (React's
# style attributes, Swagger UI's). No page may frame the app (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS (docs/operations.md#https): off by default, `make run` serves plain HTTP. Behind a
# proxy that terminates TLS, DESKSTREAM_PROXY_SSL_HEADER trusts its X-Forwarded-Proto.
SECURE_HSTS_SECONDS = int(os.environ.get("DESKSTREAM_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DESKSTREAM_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_SSL_REDIRECT = env_bool("DESKSTREAM_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DESKSTREAM_PROXY_SSL_HEADER", False) else None
)

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# DATABASE_URL's query options (?sslmode=require, ...) are kept in OPTIONS (libpq parameters),
# and reach the event store's pool (eventstore_env), the event source's listener and the
# message lane's sessions (conninfo_from_django) too.
DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", DEFAULT_URL))}
# A connection pool (psycopg_pool through Django) rather than persistent connections: under
# ASGI every request runs in its own thread, and per-thread persistent connections pile up.
# Django refuses a pool with persistent connections, so CONN_MAX_AGE stays 0.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"]["OPTIONS"],
    # JIT compiles a plan when its estimated cost is high (a search over many matches) and
    # spent ~27 ms doing so on queries that then ran in less; parallel workers chose a full
    # scan of the search table (114 ms) over its text index (25 ms). Neither pays here. Any
    # ?options= of DATABASE_URL comes first; these two settings are always added.
    "options": (
        f"{DATABASES['default']['OPTIONS'].get('options', '')}"
        " -c jit=off -c max_parallel_workers_per_gather=0"
    ).strip(),
    # Opened on demand, up to DESKSTREAM_DB_POOL_SIZE; idle ones close after ten minutes
    # (the connection budget per process is in docs/operations.md).
    "pool": {
        "min_size": 0,
        "max_size": int(os.environ.get("DESKSTREAM_DB_POOL_SIZE", "24")),
        "timeout": 10,
    },
}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DESKSTREAM_TEST_DB", "test_deskstream")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Social sign-in (docs/operations.md#social-sign-in, ADR 0038): the providers whose client id
# and secret the environment gives (DESKSTREAM_GOOGLE_*, _GITHUB_*, _FACEBOOK_*, _OIDC_*),
# offered on the sign-in page (GET /api/auth/providers). social-auth reads each provider's
# settings from here (infra/auth/social.py: SignInStrategy), the rest from SOCIAL_AUTH_*.
SOCIAL_PROVIDERS: list[Provider] = social_providers(os.environ)
SOCIAL_AUTH_PIPELINE = SOCIAL_PIPELINE
SOCIAL_AUTH_REQUESTS_TIMEOUT = float(os.environ.get("DESKSTREAM_SOCIAL_TIMEOUT", "5"))
# The flow's state lives in a server-side session (django_session) for at most this long,
# keyed by an HttpOnly cookie sent to /api/auth/ only.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SIGNIN_SESSION_TTL = int(os.environ.get("DESKSTREAM_SIGNIN_SESSION_TTL_SECONDS", "600"))
# The one-time code that hands a finished sign-in to the web app: single use, this short-lived.
SIGNIN_CODE_TTL = timedelta(seconds=int(os.environ.get("DESKSTREAM_SIGNIN_CODE_TTL_SECONDS", "60")))
# Where the browser lands after a sign-in (the web app), with #signin_code= or #signin_error=.
SIGNIN_REDIRECT_URL = os.environ.get("DESKSTREAM_SIGNIN_REDIRECT_URL", "/")
# Facebook has no "verified" flag; it shares an address only once the user confirmed it.
FACEBOOK_EMAIL_TRUSTED = env_bool("DESKSTREAM_FACEBOOK_EMAIL_TRUSTED", True)

AUTH_USER_MODEL = "accounts.User"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DESKSTREAM_STATIC_ROOT") or None
# WhiteNoise serves static files (the API docs' assets, later the SPA) from the apps' own
# directories, so the embedded mode needs no collectstatic step and no CDN.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# The web app (web/, built by Vite into web/dist): WhiteNoise serves its files from the site
# root (/assets/<name>-<hash>.js, cached for a year: the hash changes with the content), and
# infra/server/webapp.py answers index.html for / and every client-side route.
WEB_DIST = Path(os.environ.get("DESKSTREAM_WEB_DIST") or BASE_DIR / "web" / "dist")
WHITENOISE_ROOT = str(WEB_DIST) if WEB_DIST.is_dir() else None
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/assets/.+-[A-Za-z0-9_-]{8,}\.(js|css|woff2?|svg|png)$"

# Request bodies: commands are small JSON documents; anything bigger is refused with 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DESKSTREAM_MAX_BODY_BYTES", str(256 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["infra.auth.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["infra.api.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "infra.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "command_api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Deskstream API",
    "DESCRIPTION": (
        "Event-sourced customer-support desk. Commands return {id, version, position}; "
        "authenticate with `Authorization: Bearer <access token>`."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One view per method of a URL (infra/server/routing.py), each documented from its own.
    "DEFAULT_GENERATOR_CLASS": "infra.server.routing.MethodRouteSchemaGenerator",
    # Attachments' scan states, apart from a ticket's status (both fields are "status").
    "ENUM_NAME_OVERRIDES": {
        "ScanStatusEnum": "read_api.serializers.SCAN_STATUSES",
        "StatusEnum": "read_api.serializers.STATUSES",
        "StaffRoleEnum": "command_api.admin_views.STAFF_ROLES",
        "RoleEnum": "infra.auth.models.ROLE_CHOICES",
        "TicketViewEnum": "read_api.filters.VIEW_CHOICES",
    },
}

# API sessions (PyJWT): short access tokens, rotating refresh tokens with reuse detection.
JWT_ACCESS_TTL = timedelta(seconds=int(os.environ.get("DESKSTREAM_ACCESS_TTL_SECONDS", "600")))
JWT_REFRESH_TTL = timedelta(
    seconds=int(os.environ.get("DESKSTREAM_REFRESH_TTL_SECONDS", str(14 * 24 * 3600)))
)
JWT_ISSUER = "deskstream"
# The web app's refresh-token cookie (ADR 0033) is Secure: browsers send it over HTTPS only.
# `make run` on 127.0.0.1 serves plain HTTP and turns it off (DESKSTREAM_COOKIE_SECURE=0).
REFRESH_COOKIE_SECURE = env_bool("DESKSTREAM_COOKIE_SECURE", True)

# Rate limits (infra/ratelimit, ADR 0032): on unless DESKSTREAM_RATE_LIMITS=off; the limits
# themselves are the admin's (PUT /api/settings/rate-limits), counted in Redis when
# DESKSTREAM_REDIS_URL is set, else in PostgreSQL.
# Off by default in test processes, whose clients are all 127.0.0.1 (tests/conftest.py turns
# them off for the servers the tests start too; the tests of the limits turn them on).
RATE_LIMITS = env_bool("DESKSTREAM_RATE_LIMITS", not os.environ.get("PYTEST_VERSION"))

# Projections: which projectors run inside the web process (make run), batch size, and how
# long a read with ?after=<position> waits for its projection before answering stale.
PROJECTORS_IN_PROCESS = env_bool("DESKSTREAM_PROJECTORS_IN_PROCESS", False)
PROJECTION_BATCH_SIZE = int(os.environ.get("DESKSTREAM_PROJECTION_BATCH_SIZE", "1000"))
# Milliseconds between the starts of a live projector's batches at least (ADR 0022): under
# load, one batch per interval takes every event appended meanwhile. 0: a batch per wake-up.
PROJECTION_INTERVAL_MS = float(os.environ.get("DESKSTREAM_PROJECTION_INTERVAL_MS", "50"))
READ_AFTER_TIMEOUT = float(os.environ.get("DESKSTREAM_READ_AFTER_TIMEOUT", "2.0"))

# Event store (eventsourcing.postgres) tuning; the connection comes from DATABASES.
EVENTSTORE_POOL_SIZE = int(os.environ.get("DESKSTREAM_EVENTSTORE_POOL_SIZE", "8"))
# Group commit: concurrent commands are appended in one transaction (see ADR 0004).
GROUP_COMMIT = env_bool("DESKSTREAM_GROUP_COMMIT", True)
GROUP_COMMIT_MAX_BATCH = int(os.environ.get("DESKSTREAM_GROUP_COMMIT_MAX_BATCH", "128"))
# The message lane (ADR 0024): plain POST /api/tickets/{id}/messages served on the ASGI
# server's event loop (needs group commit); off, every request goes through Django. Its
# session look-ups use a pool of their own, of at most this many connections.
MESSAGE_LANE = env_bool("DESKSTREAM_MESSAGE_LANE", True) and GROUP_COMMIT
MESSAGE_LANE_POOL_SIZE = int(os.environ.get("DESKSTREAM_MESSAGE_LANE_POOL_SIZE", "4"))

# Real time (Django Channels, see docs/realtime.md): the Redis channel layer when
# DESKSTREAM_REDIS_URL is set (production, the test suite), else the in-memory layer of the
# embedded mode (one process). The prefix keeps two databases' streams apart on one Redis.
REDIS_URL = os.environ.get("DESKSTREAM_REDIS_URL", "")
CHANNELS_PREFIX = os.environ.get("DESKSTREAM_CHANNELS_PREFIX") or (
    f"deskstream.{DATABASES['default']['NAME']}."
)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "infra.realtime.layers.PushPubSubLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNELS_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "infra.realtime.layers.InMemoryPushLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }
PUSH_IN_PROCESS = env_bool("DESKSTREAM_PUSH_IN_PROCESS", True)
# How frames reach the sockets of several server processes (Redis only, ADR 0044): "leader",
# one process elected with a PostgreSQL advisory lock publishes each frame once through Redis
# and every process delivers it to its own sockets (the others try to take over every
# FAILOVER seconds); "local", every process follows the log and delivers to its own sockets.
PUSH_FANOUT = os.environ.get("DESKSTREAM_PUSH_FANOUT", "leader")
if PUSH_FANOUT not in ("leader", "local"):
    raise RuntimeError(f"DESKSTREAM_PUSH_FANOUT must be leader or local, not {PUSH_FANOUT!r}")
PUSH_FAILOVER = float(os.environ.get("DESKSTREAM_PUSH_FAILOVER", "1.0"))
# WebSocket permessage-deflate (uvicorn's ws_per_message_deflate), off by default: each socket
# compresses every frame with a zlib context of its own (~300 KB of memory per socket), about
# two thirds of the server's CPU per pushed frame once frames are encoded once (ADR 0051).
WS_COMPRESSION = env_bool("DESKSTREAM_WS_COMPRESSION", False)
REALTIME_SYNC_INTERVAL = float(os.environ.get("DESKSTREAM_WS_SYNC_INTERVAL", "2.0"))
REALTIME_SILENCE_TIMEOUT = float(os.environ.get("DESKSTREAM_WS_SILENCE_TIMEOUT", "6.0"))
REALTIME_AUTH_TIMEOUT = float(os.environ.get("DESKSTREAM_WS_AUTH_TIMEOUT", "10.0"))
REALTIME_REAUTH_INTERVAL = float(os.environ.get("DESKSTREAM_WS_REAUTH_INTERVAL", "60.0"))
REALTIME_TYPING_INTERVAL = float(os.environ.get("DESKSTREAM_WS_TYPING_INTERVAL", "1.0"))
REALTIME_MAX_REPLAY = int(os.environ.get("DESKSTREAM_WS_MAX_REPLAY", "10000"))
REALTIME_MAX_SUBSCRIPTIONS = int(os.environ.get("DESKSTREAM_WS_MAX_SUBSCRIPTIONS", "50"))
# Presence across server processes (Redis only, docs/realtime.md#presence-across-processes):
# each process renews its socket counts every HEARTBEAT seconds; those of a process that
# died expire after TTL, and its agents are announced offline within TTL + HEARTBEAT.
PRESENCE_TTL = float(os.environ.get("DESKSTREAM_PRESENCE_TTL", "20.0"))
PRESENCE_HEARTBEAT = float(os.environ.get("DESKSTREAM_PRESENCE_HEARTBEAT", "5.0"))

# Notifications and e-mail (docs/notifications.md). Celery's broker is Redis when
# DESKSTREAM_CELERY_BROKER_URL or DESKSTREAM_REDIS_URL is set (workers: `celery -A
# config.celery worker -B`); without one (`make run`) tasks run eagerly, in the thread that
# enqueues them after the projector's commit. Test processes default to eager too.
CELERY_BROKER_URL = os.environ.get("DESKSTREAM_CELERY_BROKER_URL") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env_bool(
    "DESKSTREAM_CELERY_EAGER", not CELERY_BROKER_URL or bool(os.environ.get("PYTEST_VERSION"))
)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DESKSTREAM_CELERY_QUEUE", "deskstream")
# A worker whose queues held tasks this many seconds while it received none (its consumer
# stopped after losing the broker, celery#10205) stops, for its supervisor to start it again
# (infra/server/worker_watchdog.py); 0 turns the watchdog off.
# Seconds a Celery task may run before its pool process is ended (and replaced): one task
# stuck on a socket must not hold a worker for good (the outbox's claim and lease make the
# e-mail's retry safe). 0: no limit. Prefork pools only (Celery's hard time limit).
TASK_TIME_LIMIT = float(os.environ.get("DESKSTREAM_TASK_TIME_LIMIT", "300"))
WORKER_STALL_SECONDS = float(os.environ.get("DESKSTREAM_WORKER_STALL_SECONDS", "120"))
OUTBOX_SWEEP_INTERVAL = float(os.environ.get("DESKSTREAM_OUTBOX_SWEEP_INTERVAL", "30"))
# Seconds an enqueued e-mail's row is left to its task before the sweep enqueues it again.
OUTBOX_ENQUEUE_GRACE = float(os.environ.get("DESKSTREAM_OUTBOX_ENQUEUE_GRACE", "60"))
EMAIL_MAX_ATTEMPTS = int(os.environ.get("DESKSTREAM_EMAIL_MAX_ATTEMPTS", "5"))
# Seconds a task holds an outbox row it claimed; a claim not settled by then is settled by
# the sweep (pending again, or "uncertain" if the message had been handed over).
OUTBOX_LEASE = float(os.environ.get("DESKSTREAM_OUTBOX_LEASE", "120"))
# An e-mail for an event older than this when projected is skipped (first run over history).
EMAIL_MAX_AGE_HOURS = float(os.environ.get("DESKSTREAM_EMAIL_MAX_AGE_HOURS", "24"))
SMTP_HOST = os.environ.get("DESKSTREAM_SMTP_HOST", "")
SMTP_PORT = int(os.environ.get("DESKSTREAM_SMTP_PORT", "25"))
SMTP_USER = os.environ.get("DESKSTREAM_SMTP_USER", "")
SMTP_PASSWORD = os.environ.get("DESKSTREAM_SMTP_PASSWORD", "")
SMTP_TLS = os.environ.get("DESKSTREAM_SMTP_TLS", "none")  # none | starttls | ssl
EMAIL_OUTBOX = env_bool("DESKSTREAM_EMAIL_OUTBOX", not SMTP_HOST)
EMAIL_OUTBOX_DIR = os.environ.get("DESKSTREAM_EMAIL_OUTBOX_DIR") or str(BASE_DIR / "var" / "outbox")
EMAIL_FROM = os.environ.get("DESKSTREAM_EMAIL_FROM", "support@deskstream.test")
EMAIL_FROM_NAME = os.environ.get("DESKSTREAM_EMAIL_FROM_NAME", "Deskstream")
PUBLIC_URL = os.environ.get("DESKSTREAM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# How long the one-click satisfaction links of a resolution e-mail work (ADR 0047).
CSAT_LINK_DAYS = int(os.environ.get("DESKSTREAM_CSAT_LINK_DAYS", "14"))
SITE_NAME = os.environ.get("DESKSTREAM_SITE_NAME", "Deskstream")

# Attachments (docs/operations.md#attachments, ADR 0029): limits, where the encrypted files
# live (the local disk under var/, or S3), the master key that wraps each file's data key
# (var/attachment.key is generated on first use when DESKSTREAM_ATTACHMENT_KEY is not set),
# how long a download link lives, and the clamd that scans every file before it is offered.
ATTACHMENT_MAX_BYTES = int(os.environ.get("DESKSTREAM_ATTACHMENT_MAX_BYTES", str(10 * 1024**2)))
ATTACHMENTS_PER_MESSAGE = int(os.environ.get("DESKSTREAM_ATTACHMENTS_PER_MESSAGE", "10"))
ATTACHMENTS_PER_TICKET = int(os.environ.get("DESKSTREAM_ATTACHMENTS_PER_TICKET", "50"))
ATTACHMENT_TYPES = env_list(
    "DESKSTREAM_ATTACHMENT_TYPES",
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,application/zip",
)
ATTACHMENT_STORAGE = os.environ.get("DESKSTREAM_ATTACHMENT_STORAGE", "local").strip().lower()
if ATTACHMENT_STORAGE not in {"local", "s3"}:
    raise RuntimeError(
        f"DESKSTREAM_ATTACHMENT_STORAGE must be local or s3, not {ATTACHMENT_STORAGE!r}"
    )
ATTACHMENT_DIR = os.environ.get("DESKSTREAM_ATTACHMENT_DIR") or str(
    BASE_DIR / "var" / "attachments"
)
ATTACHMENT_KEY = os.environ.get("DESKSTREAM_ATTACHMENT_KEY", "")  # 32 bytes, base64
ATTACHMENT_KEY_FILE = BASE_DIR / "var" / "attachment.key"
ATTACHMENT_LINK_TTL = int(os.environ.get("DESKSTREAM_ATTACHMENT_LINK_TTL", "300"))
S3_ENDPOINT = os.environ.get("DESKSTREAM_S3_ENDPOINT", "") or None
S3_BUCKET = os.environ.get("DESKSTREAM_S3_BUCKET", "deskstream-attachments")
S3_REGION = os.environ.get("DESKSTREAM_S3_REGION", "") or None
S3_ACCESS_KEY = os.environ.get("DESKSTREAM_S3_ACCESS_KEY", "") or None
S3_SECRET_KEY = os.environ.get("DESKSTREAM_S3_SECRET_KEY", "") or None
S3_PREFIX = os.environ.get("DESKSTREAM_S3_PREFIX", "")
CLAMD_ADDRESS = os.environ.get("DESKSTREAM_CLAMD_ADDRESS", "")  # host:port; "" = no scanner
CLAMD_TIMEOUT = float(os.environ.get("DESKSTREAM_CLAMD_TIMEOUT", "30"))
ATTACHMENT_RESCAN_INTERVAL = float(os.environ.get("DESKSTREAM_ATTACHMENT_RESCAN_INTERVAL", "60"))

# Automation (docs/automation.md): automatic assignment decides only with DESKSTREAM_AUTO_ASSIGN
# on (and the admin setting enabled); off by default in test processes, whose other tests
# assign by hand. The SLA check runs every DESKSTREAM_SLA_CHECK_INTERVAL seconds with the
# in-process projectors.
AUTO_ASSIGN = env_bool("DESKSTREAM_AUTO_ASSIGN", not os.environ.get("PYTEST_VERSION"))
SLA_CHECK_INTERVAL = float(os.environ.get("DESKSTREAM_SLA_CHECK_INTERVAL", "30"))

# Distributed mode (docs/operations.md, ADR 0014): the relay publishes the log to this topic,
# created with KAFKA_PARTITIONS partitions; `manage.py projector run NAME --source kafka`
# consumes it in the consumer group KAFKA_GROUP_PREFIX + NAME.
KAFKA_BOOTSTRAP = os.environ.get("DESKSTREAM_KAFKA_BOOTSTRAP", "")
KAFKA_TOPIC = os.environ.get("DESKSTREAM_KAFKA_TOPIC", "deskstream.events")
KAFKA_PARTITIONS = int(os.environ.get("DESKSTREAM_KAFKA_PARTITIONS", "12"))
KAFKA_REPLICATION = int(os.environ.get("DESKSTREAM_KAFKA_REPLICATION", "1"))
KAFKA_GROUP_PREFIX = os.environ.get("DESKSTREAM_KAFKA_GROUP_PREFIX", "deskstream.")
KAFKA_SESSION_TIMEOUT_MS = int(os.environ.get("DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS", "10000"))
KAFKA_HEARTBEAT_MS = int(os.environ.get("DESKSTREAM_KAFKA_HEARTBEAT_MS", "1000"))
# How a consumer group shares partitions: "range" (eager) or "cooperative-sticky" (KIP-429);
# the same for every member of a group (ADR 0014 has both measured).
KAFKA_ASSIGNOR = os.environ.get("DESKSTREAM_KAFKA_ASSIGNOR", "range")
RELAY_BATCH_SIZE = int(os.environ.get("DESKSTREAM_RELAY_BATCH_SIZE", "500"))
# Seconds the relay waits for the broker to acknowledge a batch before it gives up on it (the
# position stays), drops its producer and retries the batch with a new one.
RELAY_SEND_TIMEOUT = float(os.environ.get("DESKSTREAM_RELAY_SEND_TIMEOUT", "30"))

# Analytics (docs/analytics.md, ADRs 0030 and 0035): a ClickHouse server when CLICKHOUSE_URL is
# set (clickhouse://user:password@host:9000/database), else chDB in-process with its data in
# ANALYTICS_PATH, owned by the process that runs the projectors (make run's projector
# process), which answers the web server's reads on the Unix socket ANALYTICS_SOCKET
# (default: ANALYTICS_PATH + ".sock"). ANALYTICS off: no analytics projector runs in this
# process's runtime (the tests' servers).
CLICKHOUSE_URL = os.environ.get("DESKSTREAM_CLICKHOUSE_URL", "")
ANALYTICS_PATH = os.environ.get("DESKSTREAM_ANALYTICS_PATH", str(BASE_DIR / "var" / "analytics"))
ANALYTICS_SOCKET = os.environ.get("DESKSTREAM_ANALYTICS_SOCKET", "")
ANALYTICS = env_bool("DESKSTREAM_ANALYTICS", True)
# The analytics projector's batches: few and large (ClickHouse wants few big inserts; chDB's cost
# is per insert far more than per row: ADR 0035).
# At most one batch per interval, of up to the batch size (more while catching up).
ANALYTICS_BATCH_SIZE = int(os.environ.get("DESKSTREAM_ANALYTICS_BATCH_SIZE", "10000"))
ANALYTICS_INTERVAL_MS = float(os.environ.get("DESKSTREAM_ANALYTICS_INTERVAL_MS", "1000"))

# Search (docs/operations.md, ADR 0028): PostgreSQL full text (the embedded default) or
# OpenSearch at OPENSEARCH_URL, its documents in the index behind the alias OPENSEARCH_INDEX.
# A live batch's bulk request waits for OPENSEARCH_REFRESH ("wait_for": its position then
# means searchable, for ?after=; "false": searchable within the 1 s refresh interval).
SEARCH_BACKEND = os.environ.get("DESKSTREAM_SEARCH_BACKEND", "postgres")
if SEARCH_BACKEND not in ("postgres", "opensearch"):
    raise RuntimeError(
        f"DESKSTREAM_SEARCH_BACKEND must be postgres or opensearch, not {SEARCH_BACKEND!r}"
    )
OPENSEARCH_URL = os.environ.get("DESKSTREAM_OPENSEARCH_URL", "")
OPENSEARCH_INDEX = os.environ.get("DESKSTREAM_OPENSEARCH_INDEX", "deskstream-search")
OPENSEARCH_REFRESH = os.environ.get("DESKSTREAM_OPENSEARCH_REFRESH", "wait_for")
OPENSEARCH_TIMEOUT = float(os.environ.get("DESKSTREAM_OPENSEARCH_TIMEOUT", "5"))

# Logging (docs/operations.md#logs): every line carries an ISO timestamp (UTC), the level and
# the logger's name, rendered by structlog from the standard library's records: structlog's
# console lines (extra fields as key=value) by default, one JSON object per line with
# DESKSTREAM_LOG_FORMAT=json.
# kafka-python logs every connection and metadata step at INFO: its loggers stay at WARNING
# unless DESKSTREAM_KAFKA_LOG_LEVEL says otherwise.
LOG_FORMAT = os.environ.get("DESKSTREAM_LOG_FORMAT", "console").strip().lower()
if LOG_FORMAT not in {"console", "json"}:
    raise RuntimeError(f"DESKSTREAM_LOG_FORMAT must be console or json, not {LOG_FORMAT!r}")
_LOG_FIELDS: list[Any] = [
    # The request id and correlation id of the request, projector batch or task at hand.
    observability_context.add_ids,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    # The structured fields a record passes as ``extra`` (the projectors' "event applied"
    # lines, the e-mail task's): only these, so nothing else a library passes leaks in.
    structlog.stdlib.ExtraAdder(
        allow=["correlation_id", "request_id", "projector", "position", "event_type", "outbox_id"]
    ),
]
_LOG_RENDERING: list[Any] = (
    [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    if LOG_FORMAT == "json"
    # Plain tracebacks: the default (rich's) prints every frame's local variables.
    else [
        structlog.dev.ConsoleRenderer(
            colors=False, pad_event_to=0, exception_formatter=structlog.dev.plain_traceback
        )
    ]
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structlog": {
            "()": structlog.stdlib.ProcessorFormatter,
            "foreign_pre_chain": _LOG_FIELDS,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_LOG_RENDERING,
            ],
        }
    },
    # The social sign-in callback's query (the provider's code) never reaches a log line.
    "filters": {"signin_callback": {"()": "infra.auth.log_redaction.RedactSignInCallback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structlog",
            "filters": ["signin_callback"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DESKSTREAM_LOG_LEVEL", "WARNING")},
    "loggers": {"kafka": {"level": os.environ.get("DESKSTREAM_KAFKA_LOG_LEVEL", "WARNING")}},
}

# AI drafts (infra/llm, ADR 0036). With a base URL, drafts come from that OpenAI-compatible
# chat endpoint (OpenAI, Azure, vLLM, Ollama, a llama.cpp server); without one, from
# retrieval (the replies that resolved the most similar tickets). The key is read from the
# environment only, never stored. Prices are USD per million tokens (for the recorded cost).
LLM_BASE_URL = os.environ.get("DESKSTREAM_LLM_BASE_URL", "")
LLM_MODEL = os.environ.get("DESKSTREAM_LLM_MODEL", "")
LLM_API_KEY = os.environ.get("DESKSTREAM_LLM_API_KEY", "")
LLM_TIMEOUT = float(os.environ.get("DESKSTREAM_LLM_TIMEOUT", "30"))
LLM_MAX_RETRIES = int(os.environ.get("DESKSTREAM_LLM_MAX_RETRIES", "2"))
LLM_MAX_TOKENS = int(os.environ.get("DESKSTREAM_LLM_MAX_TOKENS", "600"))
LLM_PRICE_INPUT = float(os.environ.get("DESKSTREAM_LLM_PRICE_INPUT", "0"))
LLM_PRICE_OUTPUT = float(os.environ.get("DESKSTREAM_LLM_PRICE_OUTPUT", "0"))
LLM_MODERATION = env_bool("DESKSTREAM_LLM_MODERATION", False)
# With no Celery worker (eager tasks, `make run`), a draft is written in a thread of the web
# process after the request has answered 202, so a model's seconds never hold the request;
# its text streams over the WebSocket as a worker's would. Off: in the request (test
# processes, which read the finished draft from the answer).
DRAFTS_IN_THREADS = env_bool("DESKSTREAM_DRAFTS_IN_THREADS", not os.environ.get("PYTEST_VERSION"))
# The same for e-mails: with eager tasks, the notification projector hands each new outbox
# row to one e-mail thread of its process instead of sending it inside its batch's commit
# hook, so a backlog of e-mails (a start after downtime, a slow SMTP server) never holds the
# projector back. Off in test processes, which read what was sent right after projecting.
EMAILS_IN_THREADS = env_bool("DESKSTREAM_EMAILS_IN_THREADS", not os.environ.get("PYTEST_VERSION"))
# Operations (docs/operations.md#metrics-and-probes, ADR 0042). GET /metrics answers a request
# with ``Authorization: Bearer <DESKSTREAM_METRICS_TOKEN>``; without a token configured, only
# requests from the loopback address. /readyz is 503 while a projector is more than
# READY_MAX_LAG events behind the log.
METRICS_TOKEN = os.environ.get("DESKSTREAM_METRICS_TOKEN", "")
READY_MAX_LAG = int(os.environ.get("DESKSTREAM_READY_MAX_LAG", "1000"))
# Error reports to Sentry when a DSN is set, personal data scrubbed (infra/observability/errors.py).
SENTRY_DSN = os.environ.get("DESKSTREAM_SENTRY_DSN", "")
if SENTRY_DSN:
    error_reports.init(
        SENTRY_DSN,
        environment=os.environ.get("DESKSTREAM_SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=float(os.environ.get("DESKSTREAM_SENTRY_TRACES_SAMPLE_RATE", "0")),
    )
