"""Counting requests per key in fixed windows, shared by every server process.

``RateLimiter.hit(key, limit, window)`` counts one request for ``key`` in the current window
of ``window`` seconds and answers None while the count is within ``limit``, else the seconds
until the window ends (``Retry-After``). Two backends keep the counts where every process
sees them: Redis (``INCR`` with an expiry) when ``DESKSTREAM_REDIS_URL`` is set, PostgreSQL
(one upserted row per key) otherwise. ``tests/contracts/test_rate_limiter_contract.py`` runs
the same tests against both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import cache
from typing import Protocol

import redis
from django.conf import settings
from django.db import connection

Clock = Callable[[], float]


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int) -> int | None:
        """Count one request; None if within ``limit``, else seconds to wait (≥ 1)."""


def _window(now: float, window: int) -> tuple[int, int]:
    """The start of the window ``now`` falls in, and the whole seconds left in it (≥ 1)."""
    start = int(now // window) * window
    return start, max(1, math.ceil(start + window - now))


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str, clock: Clock = time.time) -> None:
        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        self._clock = clock

    def hit(self, key: str, limit: int, window: int) -> int | None:
        start, left = _window(self._clock(), window)
        name = f"{self._prefix}ratelimit:{key}:{start}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, window + 1)
        count, _ = pipe.execute()
        return None if int(count) <= limit else left


class PostgresRateLimiter:
    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    def hit(self, key: str, limit: int, window: int) -> int | None:
        start, left = _window(self._clock(), window)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ratelimit_counter (key, window_start, count) VALUES (%s, %s, 1) "
                "ON CONFLICT (key) DO UPDATE SET count = CASE "
                "WHEN ratelimit_counter.window_start = EXCLUDED.window_start "
                "THEN ratelimit_counter.count + 1 ELSE 1 END, "
                "window_start = EXCLUDED.window_start "
                "RETURNING count",
                [key, start],
            )
            row = cursor.fetchone()
        assert row is not None
        return None if int(row[0]) <= limit else left


@cache
def limiter() -> RateLimiter:
    """The backend the settings choose (one per process)."""
    if settings.REDIS_URL:
        return RedisRateLimiter(settings.REDIS_URL, settings.CHANNELS_PREFIX)
    return PostgresRateLimiter()
