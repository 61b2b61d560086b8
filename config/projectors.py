"""Wiring of the projection engine: which projectors exist, their source and their store.

The one place that knows the embedded event source is the event store's notification log;
the Kafka source (a later issue) plugs in here without the projectors noticing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

from command_api.application import get_application
from infra.postgres import notifications as pg_notifications
from infra.postgres import readmodels
from infra.postgres import search as pg_search
from infra.postgres.event_source import PostgresEventSource, conninfo_from_django
from infra.postgres.feed import LOG, FeedConflictError, FeedLeases
from infra.postgres.projection_store import PostgresProjectionStore
from projections import assignment, notifications, search, sla, tickets
from projections.ports import Envelope, EventSource
from projections.runner import ProjectionRunner, SharedLog

log = logging.getLogger(__name__)


def event_source(*, own: bool = False) -> PostgresEventSource:
    """The log; with ``own``, a source that is also handed what this process's application
    appends and reads only the rest from the log (one reader of it: the push projector)."""
    app = get_application()
    return PostgresEventSource(
        app.recorder,  # type: ignore[arg-type]
        app.mapper,
        conninfo_from_django(settings.DATABASES["default"]),
        own=app.watch_own_appends() if own else None,
    )


STORES: dict[str, Callable[[], PostgresProjectionStore]] = {
    tickets.NAME: lambda: PostgresProjectionStore(
        tickets.NAME,
        tables=readmodels.TABLES,
        deferred_indexes=readmodels.DEFERRED_INDEXES,
        state_factory=readmodels.PostgresTicketsState,
        handler=readmodels.handler,
    ),
    search.NAME: lambda: PostgresProjectionStore(
        search.NAME,
        tables=pg_search.TABLES,
        deferred_indexes=pg_search.DEFERRED_INDEXES,
        state_factory=pg_search.PostgresSearchState,
        handler=pg_search.handler,
    ),
    notifications.NAME: lambda: PostgresProjectionStore(
        notifications.NAME,
        tables=pg_notifications.TABLES,
        state_factory=_notifications_state,
        handler=pg_notifications.handler,
    ),
    # Automation (config/automation.py): the assignment process manager decides and issues
    # commands after its live batches (never when rebuilt); the SLA projector only projects.
    assignment.NAME: lambda: _automation().assignment_store(),
    sla.NAME: lambda: _automation().sla_store(),
}


def _automation() -> Any:
    from config import automation

    return automation


def _notifications_state(cursor: Any, suffix: str) -> Any:
    """The notification projector's state, enqueueing its new e-mails after each commit."""
    from config.notifications import state

    return state(cursor, suffix)


def store(name: str) -> PostgresProjectionStore:
    try:
        return STORES[name]()
    except KeyError:
        raise KeyError(f"Unknown projector {name!r}; known: {', '.join(sorted(STORES))}") from None


def runner(name: str, source: EventSource | None = None) -> ProjectionRunner:
    projection = store(name)
    crash_after = os.environ.get("DESKSTREAM_FAULT_CRASH_AFTER")
    if crash_after:
        projection = _crashing(projection, int(crash_after))
    return ProjectionRunner(
        source or event_source(),
        projection,
        batch_size=settings.PROJECTION_BATCH_SIZE,
        interval=settings.PROJECTION_INTERVAL_MS / 1000,
    )


def _crashing(projection: PostgresProjectionStore, after: int) -> PostgresProjectionStore:
    """Fault injection for the crash tests: the process dies in the middle of a batch, after
    handling ``after`` events and before that batch commits (``DESKSTREAM_FAULT_CRASH_AFTER``)."""
    handled = 0
    inner = projection._handler

    def handler(envelope: Envelope, state: Any) -> None:
        nonlocal handled
        inner(envelope, state)
        handled += 1
        if handled >= after:
            os._exit(86)

    projection._handler = handler
    return projection


_in_process: list[tuple[threading.Event, list[threading.Thread]]] = []
_leases: list[FeedLeases] = []


def stop_in_process(timeout: float = 10.0) -> None:
    """Stop the projector threads this process started (each finishes its current batch)."""
    while _in_process:
        stop, threads = _in_process.pop()
        stop.set()
        for thread in threads:
            thread.join(timeout)
    while _leases:
        _leases.pop().close()


def claim_log_feeds(label: str) -> list[str]:
    """The projectors this process may feed from the log: each one whose lease it got. The
    others are fed from Kafka (recorded, or a consumer is running): they are skipped with a
    warning that says why and what to do (infra/postgres/feed.py)."""
    leases = FeedLeases(conninfo_from_django(settings.DATABASES["default"]), label)
    _leases.append(leases)
    names = []
    for name in STORES:
        try:
            leases.claim(name, LOG)
        except FeedConflictError as error:
            log.warning("not running projector %s here: %s", name, error)
            continue
        names.append(name)
    return names


def start_push_in_process(stop: threading.Event) -> threading.Thread:
    """The push projector alone, in a thread of this process (the web server's, beside the
    projector process); ``stop_in_process`` stops it before the event store closes."""
    from config.realtime import push_thread

    thread = push_thread(stop)
    thread.start()
    _in_process.append((stop, [thread]))
    return thread


def start_in_process(
    stop: threading.Event, *, push: bool = True, label: str = "web server projectors"
) -> list[threading.Thread]:
    """Every projector in a thread of this process (the embedded mode), with the push
    projector too unless ``push`` is off (``manage.py projector run-all`` leaves it to the
    web server). Projectors fed from Kafka are left out (``claim_log_feeds``)."""
    names = claim_log_feeds(label)

    # One reader decodes each new event once for all the projector threads (each still
    # locks and advances its own position; see projections.runner.SharedLog).
    upstream = event_source()
    shared = SharedLog(
        upstream,
        batch_size=settings.PROJECTION_BATCH_SIZE,
        interval=settings.PROJECTION_INTERVAL_MS / 1000,
    )

    def read_log() -> None:
        try:
            while not stop.is_set():
                try:
                    shared.follow(stop)
                except Exception:
                    if stop.is_set():
                        break
                    log.exception("the projectors' log reader failed; retrying in 1 s")
                    stop.wait(1.0)
        finally:
            upstream.close()

    def follow(name: str) -> None:
        r = runner(name, shared.source())
        try:
            while not stop.is_set():
                try:
                    r.run(stop)
                except Exception:  # keep the projector alive; the batch rolled back
                    if stop.is_set():
                        break
                    log.exception("projector %s failed; retrying in 1 s", name)
                    stop.wait(1.0)
        finally:
            r.source.close()  # type: ignore[attr-defined]
            connection.close()

    threads = [threading.Thread(target=read_log, name="projector-log-reader", daemon=True)]
    threads += [
        threading.Thread(target=follow, args=(name,), name=f"projector-{name}", daemon=True)
        for name in names
    ]
    if push:  # the push projector (WebSocket frames) has no tables, so it is not in STORES
        from config.realtime import push_thread

        threads.append(push_thread(stop))
    # Re-enqueues e-mails whose enqueue was lost (there is no Celery beat in this mode).
    from config.notifications import sweeper_thread

    threads.append(sweeper_thread(stop))
    # Records SLA breaches on a schedule (manage.py sla check elsewhere).
    threads.append(_automation().sla_check_thread(stop))
    for thread in threads:
        thread.start()
    _in_process.append((stop, threads))
    return threads
