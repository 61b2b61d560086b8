"""The message lane: ``POST /api/tickets/{id}/messages`` served on the event loop.

Posting a message is most of what a support desk writes. Through Django and DRF, each one
crossed from the event loop to a request thread and back, and its thread woke again for the
session query and for its group commit; with 32 clients those ~35 threads spent most of a
request's time waiting for the interpreter lock, and the request plumbing was about a third
of the web server's CPU per command (docs/adr/0024-message-lane.md).

``MessageLane`` sits in front of Django's ASGI handler. For a plain, well-formed message
command it does on the event loop what the view does: verifies the token and reads the
session (``AsyncSessions``, the same checks and query as ``authenticate_access``), parses
the body (``plain_message``: what ``PostMessageSerializer`` makes of it), waits for the
ticket's turn (on the loop), decides on the ticket as this process last stored it, awaits
its group commit (``DeskstreamApplication.try_post_message``), and answers as the view
would, with the headers Django's middleware and DRF add. Anything else goes to Django,
which decides it the usual way and words every error: another method or path, a body that
is not plain JSON within the size limit, a host Django would refuse, a token or session
that does not pass, a message with attachments or an ``If-Match`` the lane cannot read, an
``Accept`` header other than JSON's or a query string (content negotiation), no ticket in
hand, a decision that fails, a no-op, a version conflict. In each of those cases nothing
was appended, and Django gets the request as it arrived.

It fails safe: it switches itself off, and every request goes to Django, unless Django's
middleware and what DRF runs for the view (authentication, permission, throttle, parser,
renderer, content negotiation and versioning classes) are exactly those it was verified against
(``VERIFIED``; ``tests/e2e/test_message_lane.py`` checks its answers equal Django's).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import get_resolver
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.application import Actor, DeskstreamApplication
from command_api.errors import exception_handler
from command_api.serializers import plain_message
from command_api.views import if_match_version
from domain.lifecycle import Role
from domain.numbers import parse_natural
from infra.api import parse_json
from infra.auth.tokens import AsyncSessions, TokenError
from infra.ratelimit import policy
from infra.ratelimit.throttles import COUNTED, MessageThrottle
from infra.server.middleware import SyncSecurityMiddleware
from infra.server.routing import MethodRoute
from infra.unavailable import database_unavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

_PATH = re.compile(r"/api/tickets/([0-9a-fA-F-]{32,36})/messages")
log = logging.getLogger("django.request")
lane_log = logging.getLogger(__name__)

# What the lane was verified against: its answers equal Django's with exactly this
# middleware, and these classes where DRF runs them for the view, in this order
# (tests/e2e/test_message_lane.py). With anything else the lane switches itself off; a
# change here needs those tests run, and the lane changed if they fail.
VERIFIED: dict[str, tuple[str, ...]] = {
    "MIDDLEWARE": (
        "infra.server.middleware.SyncSecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "infra.server.middleware.SyncCommonMiddleware",
    ),
    "authentication classes": ("infra.auth.authentication.JWTAuthentication",),
    "permission classes": ("rest_framework.permissions.IsAuthenticated",),
    "throttle classes": ("infra.ratelimit.throttles.MessageThrottle",),
    "parser classes": ("infra.api.BoundedJSONParser",),
    "renderer classes": ("rest_framework.renderers.JSONRenderer",),
    "content negotiation class": ("rest_framework.negotiation.DefaultContentNegotiation",),
    "versioning class": (),
}

# The Accept headers the lane serves: those for which DRF's negotiation, with JSONRenderer
# alone, picks it for ``application/json`` (no parameters: ``indent`` would change the
# body). Any other, and any query string (``?format=``), goes to Django, which negotiates.
_ACCEPTED = frozenset([b"*/*", b"application/json"])
# The Host headers whose verdict the lane keeps (the same few on every request).
_HOST_VERDICTS = 64


class MessageLane:
    """ASGI: plain message commands on the event loop, everything else to ``django``.

    ``route`` is what Django serves the path with (``config/urls.py``): the lane adds the
    headers its POST view adds to every response (``Vary`` with several renderers, and the
    route's ``Allow``), and those of
    Django's security middleware, taken from the middleware itself. ``enabled`` off sends
    everything to Django; so does a configuration other than ``VERIFIED`` (logged).
    """

    def __init__(
        self,
        django: ASGIApp,
        *,
        application: Callable[[], DeskstreamApplication],
        sessions: AsyncSessions,
        route: MethodRoute,
        enabled: bool = True,
    ) -> None:
        self._django = django
        self._application = application
        self._sessions = sessions
        view = route.view_for("POST")
        assert view is not None, "the message lane serves the path's POST"
        self.enabled = enabled and _lane_allowed(view)
        self._limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self._hosts = _allowed_hosts()
        self._host_verdicts: dict[bytes, bool] = {}  # Host header -> allowed (_host_allowed)
        self._security_headers = _encoded(_security_headers())
        self._view_headers = _encoded({**_view_headers(view), "Allow": route.allow})
        self._server_error = _server_error()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or scope.get("query_string")
            or not (match := _PATH.fullmatch(scope["path"]))
        ):
            await self._django(scope, receive, send)
            return
        headers = _single_headers(scope["headers"])
        length = None if headers is None else _content_length(headers)
        if (
            headers is None
            or length is None
            or length > self._limit
            or headers.get(b"accept", b"*/*").strip() not in _ACCEPTED
            or not self._host_allowed(headers)
        ):
            await self._django(scope, receive, send)
            return
        read = await _read(receive, length)
        if read is None:
            return  # the client went away before its body arrived (Django: the same)
        body, more = read
        answer = None if more else await self._serve(match.group(1), headers, body, scope)
        if answer is None:
            await self._django(scope, _replay(body, more, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *self._security_headers,
                    *(self._view_headers if answer.by_view else ()),
                    *answer.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _serve(
        self, ticket: str, headers: dict[bytes, bytes], body: bytes, scope: Scope
    ) -> _Answer | None:
        """The response to a plain message command, or None for Django to decide it."""
        if _media_type(headers.get(b"content-type", b"")) != "application/json":
            return None
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        seen: int | None = None
        if (if_match := headers.get(b"if-match")) is not None:
            seen = if_match_version(if_match.decode("latin-1"))  # as Django decodes headers
            if seen is None:
                return None
        try:
            ticket_id = UUID(ticket)
            data = parse_json(body.decode("utf-8"))
        except ValueError:  # a malformed id (404), or body (400): Django words it
            return None
        command = plain_message(data)
        if command is None:
            return None
        try:
            user, _ = await self._sessions.authenticate(token)
        except TokenError:
            return None
        except Exception:  # PostgreSQL away: Django's path reports it as it does for others
            log.warning("message lane: session lookup failed", exc_info=True)
            return None
        actor = Actor(id=str(user.pk), role=Role(user.role))
        if settings.RATE_LIMITS:
            # MessageThrottle's check, after authentication as in DRF; counted once, also
            # when Django decides the request after all (COUNTED).
            client = scope.get("client")
            ip = client[0] if client else None
            throttled = await asyncio.to_thread(_rate_limited, str(user.pk), ip)
            scope[COUNTED] = True
            if throttled is not None:
                return throttled
        try:
            result = await self._application().try_post_message(
                ticket_id, actor, seen_version=seen, **command
            )
        except Exception as exc:
            # The append failed after it was sent: it may have been stored all the same, so
            # it is not sent again. Answered as Django's path answers it: 503 while the
            # database is unavailable, else 500.
            if database_unavailable(exc):
                return _rendered(exception_handler(exc, {}))
            log.exception("Internal Server Error: /api/tickets/%s/messages", ticket)
            return self._server_error
        if result is None:
            return None
        result = result.seen_by(actor.role)  # a customer: their ticket's public version
        return _Answer.json(201, result.as_dict(), etag=result.version)

    def _host_allowed(self, headers: dict[bytes, bytes]) -> bool:
        """What ``HttpRequest.get_host()`` checks (CommonMiddleware calls it for every
        request); a request without a Host header is left to Django."""
        host = headers.get(b"host")
        if host is None:
            return False
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            domain, _ = split_domain_port(host.decode("latin-1"))
            verdict = bool(domain) and validate_host(domain, self._hosts)
            if len(self._host_verdicts) >= _HOST_VERDICTS:
                self._host_verdicts.clear()  # a client making up hosts gains nothing
            self._host_verdicts[host] = verdict
        return verdict


def _rate_limited(user: str, ip: str | None) -> _Answer | None:
    """The view's 429 if the message limits are reached (``MessageThrottle``, the same
    check), rendered by the same exception handler; None otherwise."""
    try:
        wait = policy.check(MessageThrottle.scope, user, ip)
    finally:
        connection.close()  # back to the pool: this thread serves no request
    if wait is None:
        return None
    return _rendered(exception_handler(Throttled(wait), {}))


def _rendered(response: Response | None) -> _Answer:
    """The exception handler's answer as the view would send it: its body rendered as
    ``JSONRenderer`` does, its headers (``Retry-After``) with it."""
    assert response is not None
    answer = _Answer.json(response.status_code, response.data)
    return _Answer(
        answer.status,
        answer.body,
        [
            *answer.headers,
            *_encoded({k: v for k, v in response.headers.items() if k != "Content-Type"}),
        ],
        by_view=True,
    )


def _lane_allowed(view: type[APIView]) -> bool:
    """Whether the lane may serve: with the configuration it was verified against only
    (otherwise it logs why it is off)."""
    reason = _why_off(view)
    if reason is not None:
        lane_log.warning("Message lane off, every request goes to Django: %s.", reason)
    return reason is None


def _why_off(view: type[APIView]) -> str | None:
    """The lane answers as Django's middleware would only while that middleware adds
    nothing that depends on the request (no HTTPS redirect or HSTS, no ``www.`` redirect,
    no refused user agents, the host taken from the Host header), and as Django's
    ``handler500`` only without ``DEBUG`` (Django's 500 is then its technical page); and
    only with the middleware and view classes of ``VERIFIED``."""
    for name in (
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "PREPEND_WWW",
        "DISALLOWED_USER_AGENTS",
        "USE_X_FORWARDED_HOST",
        "FORCE_SCRIPT_NAME",
    ):
        if getattr(settings, name):
            return f"{name} is set"
    try:
        current = _configuration(view)
    except Exception as exc:  # e.g. a throttle without a rate: Django's path reports it
        return f"the view's classes cannot be built ({exc!r})"
    for what, verified in VERIFIED.items():
        if current[what] != verified:
            return f"{what}: {list(current[what])}, verified with {list(verified)}"
    return None


def _configuration(view_class: type[APIView]) -> dict[str, tuple[str, ...]]:
    """The middleware and the classes DRF runs for the view, by dotted name, as in
    ``VERIFIED``."""
    view = _set_up(view_class)
    return {
        "MIDDLEWARE": tuple(settings.MIDDLEWARE),
        "authentication classes": _names(view.get_authenticators()),
        "permission classes": _names(view.get_permissions()),
        "throttle classes": _names(view.get_throttles()),
        "parser classes": _names(view.get_parsers()),
        "renderer classes": _names(view.get_renderers()),
        "content negotiation class": _names([view.get_content_negotiator()]),
        "versioning class": _names([view.versioning_class()] if view.versioning_class else []),
    }


def _names(objects: Sequence[object]) -> tuple[str, ...]:
    return tuple(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)


def _set_up(view_class: type[APIView]) -> APIView:
    """The view, set up as for a request (Django's ``View.setup`` lets ``get`` answer HEAD
    too, which ``Allow`` lists)."""
    view = view_class()
    view.setup(HttpRequest())
    return view


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:  # as HttpRequest.get_host() does
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _view_headers(view_class: type[APIView]) -> dict[str, str]:
    """The headers DRF adds to the view's every response (not to handler500's)."""
    headers: dict[str, str] = _set_up(view_class).default_response_headers
    return headers


def _server_error() -> _Answer:
    """Django's answer to an exception in a view: its ``handler500``'s response, with the
    ``Content-Length`` that ``CommonMiddleware`` adds."""
    response = get_resolver().resolve_error_handler(500)(HttpRequest())
    headers = {**response.headers, "Content-Length": str(len(response.content))}
    return _Answer(response.status_code, response.content, _encoded(headers), by_view=False)


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _security_headers() -> dict[str, str]:
    """What the security middleware of ``VERIFIED`` adds to a response (nosniff, referrer,
    opener and content security policy, frame options), from the middleware itself, so the
    lane follows its settings."""
    response = SyncSecurityMiddleware(lambda request: HttpResponse()).process_response(
        HttpRequest(), HttpResponse()
    )
    return {k: v for k, v in response.headers.items() if k.lower() != "content-type"}


_READ = frozenset(
    [b"accept", b"authorization", b"content-length", b"content-type", b"host", b"if-match"]
)


def _single_headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The request's headers by (lower-case) name; None if one the lane reads is repeated
    (Django joins repeats with commas; the lane leaves them to it)."""
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        name = name.lower()
        if name in headers and name in _READ:
            return None
        headers[name] = value
    return headers


def _content_length(headers: dict[bytes, bytes]) -> int | None:
    raw = headers.get(b"content-length")
    # None: chunked, or malformed: Django's path
    return None if raw is None else parse_natural(raw.decode("latin-1"))


def _media_type(value: bytes) -> str:
    main, _, params = value.decode("latin-1").partition(";")
    charset = re.search(r"charset\s*=\s*\"?([\w-]+)", params, re.IGNORECASE)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        return ""  # another encoding: Django's parser decodes it
    return main.strip().lower()


async def _read(receive: Receive, length: int) -> tuple[bytes, bool] | None:
    """The body as it arrives, and whether more follows: only when more than its
    Content-Length (``length``) came, which is left to Django. None if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if not more or size > length:
            return b"".join(chunks), more


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """``receive`` as it was before the lane read ``body`` from it."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    by_view: bool  # DRF's view made it (and adds its headers), not Django's handler500

    @classmethod
    def json(cls, status: int, data: dict[str, Any], etag: int | None = None) -> _Answer:
        """Rendered as DRF's ``JSONRenderer`` renders it (compact, UTF-8)."""
        body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        content = body.encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ]
        if etag is not None:
            headers.append((b"etag", f'"{etag}"'.encode()))
        return cls(status, content, headers, by_view=True)
