"""Operations endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (docs/operations.md).

Plain Django views outside ``/api/`` (no session, no content negotiation, not in the API's
schema): what a load balancer, an orchestrator and Prometheus call.

- ``GET /healthz``: the process answers (200, nothing else is checked).
- ``GET /readyz``: 200 when the database answers and every projector is within
  ``DESKSTREAM_READY_MAX_LAG`` events of the log's head; else 503 naming what is behind or
  unavailable. The check itself is the composition root's (``provide``).
- ``GET /metrics``: the Prometheus exposition text, to a request bearing
  ``DESKSTREAM_METRICS_TOKEN``; without a token configured, to loopback clients only (ADR
  0042). Anything else is 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View

from infra.observability import metrics
from infra.observability.health import Readiness

_readiness: list[Callable[[], Readiness]] = []
LOOPBACK = frozenset(["127.0.0.1", "::1"])


def provide(readiness: Callable[[], Readiness]) -> None:
    """The readiness check (``config.bootstrap.readiness``)."""
    _readiness[:] = [readiness]


class HealthView(View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"status": "ok"})


class ReadyView(View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        state = _readiness[0]()
        return JsonResponse(state.as_dict(), status=200 if state.ready else 503)


class MetricsView(View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest, *args: Any) -> HttpResponse:
        if not allowed(request):
            return JsonResponse(
                {
                    "error": "forbidden",
                    "detail": "Metrics need the metrics token (or, without one, a loopback "
                    "client).",
                },
                status=403,
            )
        return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())
    return request.META.get("REMOTE_ADDR") in LOOPBACK
