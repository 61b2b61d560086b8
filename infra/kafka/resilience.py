"""Keeps the relay and the Kafka projectors alive through outages of PostgreSQL or the broker.

A transient error (a dropped or refused database connection, a pool that timed out, a broker
that is down or restarting) is logged and the work starts again after a capped exponential
back-off; whatever the failed step had begun rolled back, and the caller's ``reset`` drops
the connections and clients it may have broken. Any other error is not retried: it stops the
process loudly (an invariant break such as ``EventGapError`` must never be skipped by
retrying it).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from django import db

from infra.unavailable import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    *DATABASE_UNAVAILABLE,  # PostgreSQL away, restarting, or a pool out of connections
    ConnectionError,
    TimeoutError,
)

FIRST_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 30.0  # the back-off doubles up to this
HEALTHY = 10.0  # an attempt that ran this long worked: the next error starts from FIRST_DELAY


def is_transient(error: BaseException) -> bool:
    """Also any ``kafka.errors.KafkaError`` (KafkaConnectionError, KafkaTimeoutError,
    KafkaConnectionError, ...): looked up only if kafka-python was imported, as it must have
    been to raise one, so a process that never uses Kafka (``make run``'s projector process)
    does not load it (~150 modules, ~7 MB)."""
    if isinstance(error, TRANSIENT):
        return True
    kafka_errors = sys.modules.get("kafka.errors")
    return kafka_errors is not None and isinstance(error, kafka_errors.KafkaError)


def keep_running(
    work: Callable[[], None],
    stop: threading.Event,
    *,
    what: str,
    reset: Callable[[], None] = lambda: None,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> int:
    """Run ``work`` until it returns (it returns when ``stop`` is set) or raises an error
    that is not transient; retry transient ones. Returns how many errors were retried."""
    delay = first_delay
    retried = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            work()
            return retried
        except Exception as error:
            if not is_transient(error):
                raise
            if time.monotonic() - started > HEALTHY:
                delay = first_delay
            retried += 1
            log.warning("%s: %s: %s; retrying in %.1f s", what, type(error).__name__, error, delay)
            try:
                reset()
            except Exception:  # a reset that fails too: the next attempt will say why
                log.debug("%s: reset after the error failed", what, exc_info=True)
            if stop.wait(delay):
                break
            delay = min(delay * 2, max_delay)
    return retried


def reset_database(*pools: Any) -> None:
    """Drop this thread's Django connection (it may be dead; the next query opens one), and
    the dead idle connections of Django's pool and of ``pools`` (psycopg pools, such as the
    event store's): otherwise each retry would draw the next dead one."""
    db.connection.close()
    for pool in (getattr(db.connection, "pool", None), *pools):
        if pool is not None:
            pool.check()
