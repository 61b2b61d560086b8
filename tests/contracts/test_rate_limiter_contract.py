"""The ``RateLimiter`` contract, run against both backends: Redis (``DESKSTREAM_REDIS_URL``,
under a key prefix of its own per test) and PostgreSQL (the test database).

Several server processes are several limiter instances sharing one store: the tests that
count across processes use two instances. The clock is given, so windows are exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from infra.ratelimit.limiter import PostgresRateLimiter, RateLimiter, RedisRateLimiter
from tests.support.redis import redis_url

Factory = Callable[[Callable[[], float]], RateLimiter]
T0 = 1_800_000_000.0  # a multiple of 60 and 3600


@pytest.fixture(params=["redis", "postgres"])
def make(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """``make(clock)`` -> a limiter; every limiter of one test shares its store."""
    if request.param == "postgres":
        request.getfixturevalue("db")
        yield lambda clock: PostgresRateLimiter(clock=clock)
        return
    url = redis_url()
    prefix = f"test.ratelimit.{uuid.uuid4().hex}:"
    yield lambda clock: RedisRateLimiter(url, prefix, clock=clock)
    client: Any = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_within_the_limit_pass_and_the_next_waits_for_the_window(make: Factory) -> None:
    clock = Clock(T0 + 15.5)
    limiter = make(clock)
    assert [limiter.hit("k", 3, 60) for _ in range(3)] == [None, None, None]
    assert limiter.hit("k", 3, 60) == 45  # the window of [T0, T0 + 60) has 44.5 s left
    clock.now = T0 + 59.01
    assert limiter.hit("k", 3, 60) == 1  # never 0: Retry-After says when it passes again


def test_a_new_window_starts_a_new_count(make: Factory) -> None:
    clock = Clock()
    limiter = make(clock)
    assert [limiter.hit("k", 1, 60) for _ in range(2)] == [None, 60]
    clock.now = T0 + 60
    assert limiter.hit("k", 1, 60) is None
    assert limiter.hit("k", 1, 60) == 60


def test_keys_are_counted_apart(make: Factory) -> None:
    limiter = make(Clock())
    assert limiter.hit("a", 1, 60) is None
    assert limiter.hit("b", 1, 60) is None
    assert limiter.hit("a", 1, 60) == 60
    assert limiter.hit("b", 1, 60) == 60


def test_processes_share_the_count(make: Factory) -> None:
    clock = Clock()
    first, second = make(clock), make(clock)
    assert first.hit("k", 2, 60) is None
    assert second.hit("k", 2, 60) is None
    assert first.hit("k", 2, 60) == 60
    assert second.hit("k", 2, 60) == 60


def test_a_zero_limit_refuses_everything(make: Factory) -> None:
    limiter = make(Clock(T0 + 3599.5))
    assert limiter.hit("k", 0, 3600) == 1
