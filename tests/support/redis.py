"""Redis for the tests that need it: ``DESKSTREAM_REDIS_URL`` (``scripts/with_services.py``,
which ``make test`` runs under, sets it or stops). A test asking for it without it fails: the
Redis cases are never skipped silently. They skip only when ``DESKSTREAM_TEST_WITHOUT_REDIS=1``
says Redis is absent on purpose (a machine without ``redis-server``)."""

from __future__ import annotations

import os
import shutil

import pytest

WITHOUT_REDIS = "DESKSTREAM_TEST_WITHOUT_REDIS"


def redis_absent_on_purpose() -> bool:
    return os.environ.get(WITHOUT_REDIS, "").strip().lower() in {"1", "true", "yes", "on"}


def redis_url() -> str:
    """The Redis to test against; skips only on the declared absence, fails otherwise."""
    url = os.environ.get("DESKSTREAM_REDIS_URL", "")
    if url:
        return url
    if redis_absent_on_purpose():
        pytest.skip(f"{WITHOUT_REDIS}=1: Redis is absent on purpose")
    pytest.fail(
        "needs Redis: DESKSTREAM_REDIS_URL is not set. Run through `make test` (or "
        "scripts/with_services.py), or set DESKSTREAM_TEST_WITHOUT_REDIS=1 to skip the Redis "
        "tests on purpose."
    )


def redis_server_binary() -> str:
    """The ``redis-server`` binary, for tests that start and restart a Redis of their own;
    like ``redis_url``, it skips only on the declared absence of Redis."""
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    if redis_absent_on_purpose():
        pytest.skip(f"{WITHOUT_REDIS}=1: Redis is absent on purpose")
    pytest.fail(
        "needs the redis-server binary (apt-get install redis-server), or "
        "DESKSTREAM_TEST_WITHOUT_REDIS=1 to skip the Redis tests on purpose."
    )
