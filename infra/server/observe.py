"""ASGI: the request id and correlation id of every HTTP request, and its metrics.

It wraps the whole HTTP application (the message lane and Django, ``config/asgi.py``), so
both get the same: the ids are bound as context variables for the request (Django's request
thread runs in a copy of this context), both are sent back as ``X-Request-ID`` and
``X-Correlation-ID``, and the request is counted and timed by route: the URL pattern it
resolves to (``api/tickets/<str:ticket_id>``), never the path itself (ids would make a time
series per ticket).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any

from django.urls import Resolver404, get_resolver

from infra.observability import context, metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

REQUEST_HEADER = b"x-request-id"
CORRELATION_HEADER = b"x-correlation-id"
METHODS = frozenset(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


@lru_cache(maxsize=4096)
def route_of(path: str) -> str:
    """The URL pattern ``path`` resolves to, or ``unmatched``."""
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return "unmatched"
    return match.route or (match.url_name or "unmatched")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked_request = asked_correlation = None
        for name, value in scope.get("headers", ()):
            if name == REQUEST_HEADER:
                asked_request = value.decode("latin-1")
            elif name == CORRELATION_HEADER:
                asked_correlation = value.decode("latin-1")
        # A caller's request id is kept apart from ours: ours is always new (it names this
        # request in our logs); theirs, if valid, becomes the correlation id.
        request_id = context.new_id()
        correlation_id = (
            context.valid(asked_correlation) or context.valid(asked_request) or request_id
        )
        ids = [
            (b"x-request-id", request_id.encode()),
            (b"x-correlation-id", correlation_id.encode()),
        ]
        started = time.perf_counter()
        status = [0]
        method = scope.get("method", "GET")
        if method not in METHODS:
            method = "other"  # a label per made-up method would be a time series each
        route = route_of(scope.get("path", "/"))

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), *ids]
                latency = metrics.child(metrics.HTTP_LATENCY, route, method)
                latency.observe(time.perf_counter() - started)
            await send(message)

        tokens = context.bind(request=request_id, correlation=correlation_id)
        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            context.unbind(tokens)
            metrics.child(metrics.HTTP_REQUESTS, route, method, str(status[0] or 500)).inc()
