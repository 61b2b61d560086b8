"""The Prometheus metrics of every Deskstream process (``prometheus-client``).

Counters and histograms are counted where things happen (requests, commands, events
appended, WebSocket frames, rate-limit refusals). Gauges of shared state (projector
positions and lag, the e-mail outbox, the Celery queue) are read when scraped, from
``add_source`` callables the composition root registers; a source that fails is left out of
that scrape and counted in ``deskstream_metrics_source_errors_total``.

Processes (docs/operations.md#metrics): the web server answers ``GET /metrics``; with
``PROMETHEUS_MULTIPROC_DIR`` set (several web workers on one host) its counters are summed
over every process that writes there (prometheus-client's multiprocess mode). Projector,
relay and Celery worker processes serve their own on ``DESKSTREAM_METRICS_PORT``
(``serve_if_configured``), each a separate scrape target.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "deskstream_http_requests",
    "HTTP requests answered, by route (the URL pattern), method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "deskstream_http_request_duration_seconds",
    "Seconds from a request's arrival to its response's start, by route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMANDS = Counter(
    "deskstream_commands",
    "Commands whose events were appended, by aggregate type.",
    ["aggregate"],
)
EVENTS = Counter(
    "deskstream_events_appended",
    "Events appended to the event store by this process, by event type.",
    ["type"],
)
WS_CONNECTIONS = Gauge(
    "deskstream_websocket_connections",
    "Open WebSocket connections.",
    multiprocess_mode="livesum",
)
WS_FRAMES = Counter(
    "deskstream_websocket_frames",
    "WebSocket frames, by direction (sent, received).",
    ["direction"],
)
# Real-time fan-out (ADR 0044), added from the push counters every heartbeat interval.
PUSH_EVENTS = Counter(
    "deskstream_push_events",
    "Events this process's push projector turned into frames (the publisher's, with one).",
)
PUSH_PUBLISHED = Counter(
    "deskstream_push_group_messages",
    "Group messages this process's push projector published (one per frame and group).",
)
PUSH_DELIVERED = Counter(
    "deskstream_push_frames_delivered",
    "Event frames sent to this process's sockets.",
)
PUSH_COPIES = Counter(
    "deskstream_push_copies_dropped",
    "Copies of a frame dropped by a subscription that had it already (0 in normal operation).",
)
RATE_LIMITED = Counter(
    "deskstream_rate_limit_refusals",
    "Requests refused with 429 by a rate limit, by scope.",
    ["scope"],
)
SOURCE_ERRORS = Counter(
    "deskstream_metrics_source_errors",
    "Scrape-time gauges that could not be read, by source.",
    ["source"],
)

_Labelled = TypeVar("_Labelled", Counter, Histogram)
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def child(metric: _Labelled, *values: str) -> _Labelled:
    """``metric.labels(*values)``, kept once made: the hot paths (every request, command
    and appended event) count without ``labels()``' lock, string conversion and checks
    each time. Label values must come from a bounded set (routes, methods, statuses, type
    names), as they must for Prometheus anyway; nothing here removes a child."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


Source = Callable[[], Iterable[GaugeMetricFamily]]
_sources: dict[str, Source] = {}


def add_source(name: str, source: Source) -> None:
    """Register gauges read at scrape time (replacing any of that name)."""
    _sources[name] = source


class _Sources(Collector):
    def collect(self) -> Iterator[Any]:
        for name, source in list(_sources.items()):
            try:
                families = list(source())
            except Exception:
                log.warning("metrics source %s failed", name, exc_info=True)
                SOURCE_ERRORS.labels(name).inc()
                continue
            yield from families


_SOURCES = _Sources()
REGISTRY.register(_SOURCES)


def gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The exposition text of this process (or of every process sharing the multiprocess
    directory), scrape-time gauges included."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_SOURCES)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


_served = threading.Lock()
_serving: list[int] = []


def serve_if_configured() -> int | None:
    """Serve this process's metrics on ``DESKSTREAM_METRICS_PORT`` (on
    ``DESKSTREAM_METRICS_ADDRESS``, 127.0.0.1 by default) once; the port, or None."""
    port = os.environ.get("DESKSTREAM_METRICS_PORT", "")
    if not port:
        return None
    with _served:
        if not _serving:
            address = os.environ.get("DESKSTREAM_METRICS_ADDRESS", "127.0.0.1")
            start_http_server(int(port), addr=address)
            _serving.append(int(port))
    return _serving[0]
