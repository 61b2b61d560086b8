"""Django settings: everything comes from the environment, with embedded-mode defaults.

See ``docs/operations.md`` for the full list of variables.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from config.database import DEFAULT_URL, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DESKSTREAM_DEBUG", False)
DEMO_MODE = env_bool("DESKSTREAM_DEMO", False)
SECRET_KEY = os.environ.get("DESKSTREAM_SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or DEMO_MODE or os.environ.get("PYTEST_VERSION")):
        # A real deployment must set its own key; the embedded and test modes get a fixed one.
        raise RuntimeError("Set DESKSTREAM_SECRET_KEY (any long random string).")
    SECRET_KEY = "deskstream-insecure-development-key-change-me-0123456789"  # noqa: S105

ALLOWED_HOSTS = os.environ.get("DESKSTREAM_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(
    ","
)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django.contrib.postgres",
    "infra.auth.apps.AccountsConfig",
    "infra.postgres.apps.ReadModelsConfig",
    "command_api.apps.CommandApiConfig",
    "config.apps.CompositionConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
]

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

DATABASES = {"default": parse_database_url(os.environ.get("DATABASE_URL", DEFAULT_URL))}
# A connection pool (psycopg_pool through Django) rather than persistent connections: under
# ASGI every request runs in its own thread, and per-thread persistent connections pile up.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"] = {
    "pool": {
        "min_size": 1,
        "max_size": int(os.environ.get("DESKSTREAM_DB_POOL_SIZE", "24")),
        "timeout": 10,
    }
}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DESKSTREAM_TEST_DB", "test_deskstream")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# Request bodies: commands are small JSON documents; anything bigger is refused with 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DESKSTREAM_MAX_BODY_BYTES", str(256 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["infra.auth.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["infra.api.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
}

# API sessions (PyJWT): short access tokens, rotating refresh tokens with reuse detection.
JWT_ACCESS_TTL = timedelta(seconds=int(os.environ.get("DESKSTREAM_ACCESS_TTL_SECONDS", "600")))
JWT_REFRESH_TTL = timedelta(
    seconds=int(os.environ.get("DESKSTREAM_REFRESH_TTL_SECONDS", str(14 * 24 * 3600)))
)
JWT_ISSUER = "deskstream"

# Projections: which projectors run inside the web process (make run), batch size, and how
# long a read with ?after=<position> waits for its projection before answering stale.
PROJECTORS_IN_PROCESS = env_bool("DESKSTREAM_PROJECTORS_IN_PROCESS", False)
PROJECTION_BATCH_SIZE = int(os.environ.get("DESKSTREAM_PROJECTION_BATCH_SIZE", "1000"))
READ_AFTER_TIMEOUT = float(os.environ.get("DESKSTREAM_READ_AFTER_TIMEOUT", "2.0"))

# Event store (eventsourcing.postgres) tuning; the connection comes from DATABASES.
EVENTSTORE_POOL_SIZE = int(os.environ.get("DESKSTREAM_EVENTSTORE_POOL_SIZE", "8"))
# Group commit: concurrent commands are appended in one transaction (see ADR 0004).
GROUP_COMMIT = env_bool("DESKSTREAM_GROUP_COMMIT", True)
GROUP_COMMIT_MAX_BATCH = int(os.environ.get("DESKSTREAM_GROUP_COMMIT_MAX_BATCH", "128"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DESKSTREAM_LOG_LEVEL", "WARNING")},
}
