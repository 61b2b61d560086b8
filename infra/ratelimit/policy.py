"""Which requests are limited, how much, and the one check every path runs.

Scopes: ``sign_in`` (demo sign-in; "user" is the e-mail signed in as), ``refresh`` (per IP
only: the refresh token is verified by the view), ``ticket_creation``, ``messages`` and
``search``. Each has a limit per user and per IP address in a window of seconds. The admin
changes them with ``PUT /api/settings/rate-limits`` (stored in ``settings_rate_limits``);
each process rereads them at most every ``RELOAD_SECONDS``. ``DESKSTREAM_RATE_LIMITS=off``
turns every limit off (benchmarks; the test suite, whose clients all come from 127.0.0.1,
turns them on where it tests them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError

from infra.observability import metrics
from infra.ratelimit.limiter import limiter
from infra.ratelimit.models import SINGLETON, RateLimitSetting

SCOPES = ("sign_in", "refresh", "ticket_creation", "messages", "search")
FIELDS = ("per_user", "per_ip", "window_seconds")
# Far above what a person does (a busy agent answers a few messages a minute), low enough
# that a script hammering an endpoint is stopped within a minute.
DEFAULTS: dict[str, dict[str, int]] = {
    "sign_in": {"per_user": 10, "per_ip": 60, "window_seconds": 60},
    "refresh": {"per_user": 0, "per_ip": 120, "window_seconds": 60},
    "ticket_creation": {"per_user": 20, "per_ip": 120, "window_seconds": 60},
    "messages": {"per_user": 120, "per_ip": 600, "window_seconds": 60},
    "search": {"per_user": 120, "per_ip": 600, "window_seconds": 60},
}
RELOAD_SECONDS = 5.0
_loaded: tuple[float, dict[str, dict[str, int]]] | None = None


def present() -> dict[str, dict[str, int]]:
    """The limits in force: the admin's, or the defaults (0 means no limit)."""
    row = RateLimitSetting.objects.filter(id=SINGLETON).first()
    return {scope: dict((row.limits if row else DEFAULTS)[scope]) for scope in SCOPES}


def parse(data: object) -> dict[str, dict[str, int]]:
    """Every scope with its three numbers, whole and not negative; 400 naming the field."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    for name in set(data) - set(SCOPES):
        errors[name] = [f"Unknown scope; the scopes are {', '.join(SCOPES)}."]
    limits: dict[str, dict[str, int]] = {}
    for scope in SCOPES:
        given: Any = data.get(scope)
        if not isinstance(given, Mapping) or set(given) != set(FIELDS):
            errors[scope] = [f"Expected an object with {', '.join(FIELDS)}."]
            continue
        for field in FIELDS:
            value = given[field]
            lowest = 1 if field == "window_seconds" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                errors[f"{scope}.{field}"] = [f"Expected a whole number ≥ {lowest}."]
        limits[scope] = {field: given[field] for field in FIELDS}
    if errors:
        raise ValidationError(errors)
    return limits


def store(limits: dict[str, dict[str, int]], by: str) -> None:
    global _loaded
    RateLimitSetting.objects.update_or_create(
        id=SINGLETON, defaults={"limits": limits, "updated_by": by}
    )
    _loaded = None  # this process applies it at once, the others within RELOAD_SECONDS


def _current() -> dict[str, dict[str, int]]:
    global _loaded
    now = time.monotonic()
    if _loaded is None or now - _loaded[0] > RELOAD_SECONDS:
        _loaded = (now, present())
    return _loaded[1]


def check(scope: str, user: str | None, ip: str | None) -> int | None:
    """Count one request of ``scope`` for the user and the address; None if both are within
    their limits, else the seconds to wait before trying again."""
    if not settings.RATE_LIMITS:
        return None
    limits = _current()[scope]
    window = limits["window_seconds"]
    waits = []
    if user and limits["per_user"]:
        waits.append(limiter().hit(f"{scope}:user:{user}", limits["per_user"], window))
    if ip and limits["per_ip"]:
        waits.append(limiter().hit(f"{scope}:ip:{ip}", limits["per_ip"], window))
    over = [w for w in waits if w is not None]
    if not over:
        return None
    metrics.child(metrics.RATE_LIMITED, scope).inc()
    return max(over)
