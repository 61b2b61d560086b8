"""The message lane (ADR 0024) in front of the real Django ASGI handler, in this process:
what it serves itself, what it hands to Django (untouched, with nothing appended), that its
answers are Django's answers, and that it switches itself off with a configuration other
than the one it was verified against.

Users and sessions are committed (the lane reads sessions on a connection of its own), the
application appends to the test database with group commit, and the downstream is the same
``SyncChainASGIHandler`` that ``config.asgi`` serves, wrapped to count what reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.throttling import UserRateThrottle
from rest_framework.versioning import HostNameVersioning

from command_api import application as application_module
from command_api.application import Actor, DeskstreamApplication, eventstore_env
from command_api.lane import VERIFIED, MessageLane
from command_api.views import MessagesView
from config.urls import MESSAGES
from domain.lifecycle import Role
from domain.ticket import Ticket
from infra.auth.tokens import AsyncSessions
from infra.postgres.event_source import conninfo_from_django
from infra.server.handler import SyncChainASGIHandler
from infra.server.routing import MethodRoute, route
from read_api.views import MessageListView
from tests.conftest import free_port
from tests.support.turns import turn_held_by_a_thread

HOST = b"127.0.0.1:8000"


class Counted:
    """An ASGI app that counts the requests reaching it and keeps their bodies."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        seen: list[bytes] = []

        async def recording() -> Any:
            message = await receive()
            seen.append(message.get("body", b""))
            return message

        try:
            await self.app(scope, recording, send)
        finally:
            self.bodies.append(b"".join(seen))


class Harness:
    def __init__(self, django_db_blocker: Any) -> None:
        self.blocker = django_db_blocker
        self.app = DeskstreamApplication(
            eventstore_env(settings.DATABASES["default"], 4), group_commit=True
        )
        self.sessions = AsyncSessions(conninfo_from_django(settings.DATABASES["default"]))
        self.django = Counted(SyncChainASGIHandler())
        self.lane = self.build(enabled=True)

    def build(self, enabled: bool, messages: MethodRoute = MESSAGES) -> MessageLane:
        return MessageLane(
            self.django,
            application=lambda: self.app,
            sessions=self.sessions,
            route=messages,
            enabled=enabled,
        )

    def run(self, coro: Any) -> Any:
        async def main() -> Any:
            try:
                return await coro
            finally:
                await self.sessions.close()  # its pool belongs to this loop

        with self.blocker.unblock():  # Django's path queries from its request threads
            return asyncio.run(main())

    def open_ticket(self, customer: Any) -> UUID:
        """A ticket this application opened, so it has the ticket in hand."""
        res = self.app.open_ticket(
            Actor(str(customer.pk), Role.CUSTOMER),
            customer_id=str(customer.pk),
            subject="Lane",
            description="",
        )
        return res.id

    def version(self, ticket_id: UUID) -> int:
        with self.blocker.unblock():
            return len(self.app.recorder.select_events(ticket_id))


async def request(
    app: Any,
    path: str,
    body: bytes,
    *,
    token: str | None = None,
    method: str = "POST",
    headers: dict[bytes, bytes] | None = None,
    repeated: Sequence[tuple[bytes, bytes]] = (),
    query: bytes = b"",
) -> tuple[int, dict[bytes, bytes], bytes]:
    head = {b"host": HOST, b"content-type": b"application/json"}
    if body is not None:
        head[b"content-length"] = str(len(body)).encode()
    if token is not None:
        head[b"authorization"] = f"Bearer {token}".encode()
    head.update(headers or {})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k, v) for k, v in head.items() if v is not None] + list(repeated),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, content


def messages_path(ticket_id: Any) -> str:
    return f"/api/tickets/{ticket_id}/messages"


@pytest.fixture
def harness(
    django_db_setup: Any, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    h = Harness(django_db_blocker)
    # Django's path uses the same application, as in the server.
    monkeypatch.setattr(application_module, "_app", h.app)
    yield h
    h.app.close()


@pytest.fixture
def customer(e2e_user: Callable[..., Any], e2e_token: Callable[[Any], str]) -> tuple[Any, str]:
    user = e2e_user("customer")
    return user, e2e_token(user)


def test_a_plain_message_is_served_on_the_loop_and_stored(harness, customer):
    user, token = customer
    tid = harness.open_ticket(user)
    status, headers, body = harness.run(
        request(harness.lane, messages_path(tid), b'{"body": "  Any news?  "}', token=token)
    )
    assert status == 201, body
    assert harness.django.bodies == []  # Django never saw it
    data = json.loads(body)
    assert data["id"] == str(tid)
    assert data["version"] == 2
    assert data["position"] > 0
    assert headers[b"etag"] == b'"2"'
    assert headers[b"content-type"] == b"application/json"
    with harness.blocker.unblock():
        ticket = harness.app.get_ticket(tid)
    assert [m.body for m in ticket.messages] == ["Any news?"]  # trimmed, as the serializer does


FALLBACKS: dict[str, dict[str, Any]] = {
    "an internal note by a customer": {"body": b'{"body": "x", "internal": true}'},
    "an unknown field": {"body": b'{"body": "x", "extra": 1}'},
    "malformed JSON": {"body": b'{"body": '},
    "NaN": {"body": b'{"body": NaN}'},
    "a blank body": {"body": b'{"body": "   "}'},
    "attachments": {
        "body": b'{"body": "x", "attachments": [{"name": "a.txt"}]}',
        "stored": True,  # by Django
    },
    "another media type": {"headers": {b"content-type": b"text/plain"}},
    "another charset": {
        "headers": {b"content-type": b"application/json; charset=latin-1"},
        "stored": True,
    },
    "no token": {"token": None},
    "a bad token": {"token": "not-a-jwt"},
    "a malformed If-Match": {"headers": {b"if-match": b"yesterday"}},
    "a host Django refuses": {"headers": {b"host": b"evil.example"}},
    "no Content-Length": {"headers": {b"content-length": None}},
    "a repeated Authorization": {"repeated": [(b"authorization", b"Bearer another")]},
    "a GET": {"method": "GET"},
    "Accept: text/html": {"headers": {b"accept": b"text/html"}},
    "Accept with an indent": {
        "headers": {b"accept": b"application/json; indent=4"},
        "stored": True,
    },
    "a repeated Accept": {
        "headers": {b"accept": b"*/*"},
        "repeated": [(b"accept", b"application/json")],
        "stored": True,
    },
    "a query string": {"query": b"format=json", "stored": True},
    "an id that is not a UUID": {"path": "/api/tickets/not-a-uuid/messages"},
    "another path": {"path": "/api/tickets/{id}/status"},
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_anything_but_a_plain_message_reaches_django_untouched(harness, customer, case):
    user, token = customer
    tid = harness.open_ticket(user)
    spec = FALLBACKS[case]
    body = spec.get("body", b'{"body": "hello"}')
    path = spec.get("path", messages_path("{id}")).replace("{id}", str(tid))
    harness.run(
        request(
            harness.lane,
            path,
            body,
            token=spec.get("token", token),
            method=spec.get("method", "POST"),
            headers=spec.get("headers"),
            repeated=spec.get("repeated", ()),
            query=spec.get("query", b""),
        )
    )
    assert harness.django.bodies == [body]  # once, as it arrived
    # Nothing but what Django's path stored (the lane appends nothing it hands over).
    assert harness.version(tid) == (2 if spec.get("stored") else 1)


def test_a_revoked_session_reaches_django(harness, customer, django_db_blocker):
    from infra.auth.models import AuthSession

    user, token = customer
    tid = harness.open_ticket(user)
    with django_db_blocker.unblock():
        AuthSession.objects.filter(user=user).update(revoked_at=timezone.now())
    status, _, body = harness.run(
        request(harness.lane, messages_path(tid), b'{"body": "x"}', token=token)
    )
    assert status == 401
    assert json.loads(body)["error"] == "session_revoked"
    assert len(harness.django.bodies) == 1


def test_with_its_session_pool_unable_to_connect_the_lane_hands_over_to_django(harness, customer):
    """The lane's own connections fail (here: a port nobody listens on): Django's path,
    whose database is fine, serves the command after the pool's timeout."""
    user, token = customer
    tid = harness.open_ticket(user)
    harness.sessions = AsyncSessions(
        f"host=127.0.0.1 port={free_port()} dbname=nowhere connect_timeout=1", timeout=0.5
    )
    lane = harness.build(enabled=True)
    status, _, body = harness.run(
        request(lane, messages_path(tid), b'{"body": "still here"}', token=token)
    )
    assert status == 201, body
    assert harness.django.bodies == [b'{"body": "still here"}']
    assert harness.version(tid) == 2


def test_a_stale_reply_reaches_django_which_answers_409(harness, customer):
    user, token = customer
    tid = harness.open_ticket(user)
    harness.app.post_message(tid, Actor("agent-1", Role.AGENT), body="We are on it")  # v2
    status, _, body = harness.run(
        request(
            harness.lane,
            messages_path(tid),
            b'{"body": "thanks"}',
            token=token,
            headers={b"if-match": b'"1"'},
        )
    )
    assert status == 409
    assert json.loads(body)["error"] == "stale_reply"
    assert len(harness.django.bodies) == 1
    assert harness.version(tid) == 2


def test_a_ticket_not_in_hand_goes_to_django_and_the_next_message_takes_the_lane(harness, customer):
    user, token = customer
    other = DeskstreamApplication(eventstore_env(settings.DATABASES["default"], 2))
    try:
        with harness.blocker.unblock():
            tid = other.open_ticket(
                Actor(str(user.pk), Role.CUSTOMER),
                customer_id=str(user.pk),
                subject="Opened by another process",
                description="",
            ).id
    finally:
        other.close()

    async def twice() -> list[int]:
        first = await request(harness.lane, messages_path(tid), b'{"body": "1"}', token=token)
        second = await request(harness.lane, messages_path(tid), b'{"body": "2"}', token=token)
        return [first[0], second[0]]

    assert harness.run(twice()) == [201, 201]
    assert harness.django.bodies == [b'{"body": "1"}']  # Django loaded it; then it was in hand
    assert harness.version(tid) == 3


def test_a_version_conflict_appends_nothing_and_django_decides_again(harness, customer):
    user, token = customer
    tid = harness.open_ticket(user)
    other = DeskstreamApplication(eventstore_env(settings.DATABASES["default"], 2))
    try:
        with harness.blocker.unblock():
            other.post_message(tid, Actor("agent-2", Role.AGENT), body="from elsewhere")  # v2
    finally:
        other.close()
    status, _, body = harness.run(
        request(harness.lane, messages_path(tid), b'{"body": "mine"}', token=token)
    )
    assert status == 201
    assert json.loads(body)["version"] == 3  # decided by Django's path, on the fresh state
    assert len(harness.django.bodies) == 1
    with harness.blocker.unblock():
        bodies = [m.body for m in harness.app.get_ticket(tid).messages]
    assert bodies == ["from elsewhere", "mine"]


def test_a_command_waits_for_the_tickets_turn_on_the_loop(harness, customer):
    user, token = customer
    tid = harness.open_ticket(user)

    async def while_held(release: threading.Event) -> int:
        task = asyncio.ensure_future(
            request(harness.lane, messages_path(tid), b'{"body": "x"}', token=token)
        )
        await asyncio.sleep(0.3)
        waited = not task.done()
        release.set()
        status, _, _ = await task
        assert waited
        return status

    # As a command on Django's path holds it, in a request thread.
    with turn_held_by_a_thread(harness.app._turns, tid) as release:
        assert harness.run(while_held(release)) == 201
    assert harness.django.bodies == []  # it waited in the lane, not in a request thread
    assert harness.version(tid) == 2


def test_messages_at_once_on_one_ticket_all_land_in_order_each_with_its_version(harness, customer):
    """They take turns on the loop; the turn goes back from the committer's thread, so the
    next may change the ticket before the previous answer is made: each answer must still
    carry its own version."""
    user, token = customer
    tid = harness.open_ticket(user)

    async def together() -> list[tuple[int, dict[bytes, bytes], bytes]]:
        return list(
            await asyncio.gather(
                *(
                    request(harness.lane, messages_path(tid), b'{"body": "m%d"}' % i, token=token)
                    for i in range(8)
                )
            )
        )

    for _ in range(3):
        before = harness.version(tid)
        results = harness.run(together())
        assert [r[0] for r in results] == [201] * 8
        versions = sorted(json.loads(r[2])["version"] for r in results)
        assert versions == list(range(before + 1, before + 9))
        assert all(r[1][b"etag"] == b'"%d"' % json.loads(r[2])["version"] for r in results)
    assert harness.version(tid) == 1 + 3 * 8


MATRIX = [
    ("own customer", b'{"body": "hello"}'),
    ("own customer", b'{"body": "psst", "internal": true}'),
    ("other customer", b'{"body": "hello"}'),
    ("agent", b'{"body": "hello"}'),
    ("agent", b'{"body": "psst", "internal": true}'),
    ("admin", b'{"body": "psst", "internal": true}'),
    ("anonymous", b'{"body": "hello"}'),
]

# status, headers (but the date), body (the ticket's id and position masked), events stored
Answer = tuple[int, dict[bytes, bytes], bytes, int]


def both_answers(
    harness: Harness,
    owner: Any,
    body: bytes,
    token: str | None,
    *,
    headers: dict[bytes, bytes] | None = None,
    query: bytes = b"",
    during: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
) -> tuple[Answer, Answer]:
    """The same command on two tickets in the same state, once with the lane and once
    without (``during`` around each request)."""
    answers = []
    for lane in (harness.lane, harness.build(enabled=False)):
        tid = harness.open_ticket(owner)
        with during():
            status, head, content = harness.run(
                request(lane, messages_path(tid), body, token=token, headers=headers, query=query)
            )
        head.pop(b"date", None)
        masked = re.sub(rb'"position":\d+', b'"position":0', content)
        if masked != content:
            head.pop(b"content-length")  # the positions' digits may differ
        masked = masked.replace(str(tid).encode(), b"<id>")
        # Each answer names its own new message (same length, so Content-Length stays).
        masked = re.sub(rb'"message_id":"[0-9a-f-]{36}"', b'"message_id":"<message>"', masked)
        answers.append((status, head, masked, harness.version(tid) - 1))
    return answers[0], answers[1]


def assert_same(lane: Answer, django: Answer) -> None:
    assert lane[0] == django[0]
    assert lane[1] == django[1]  # every header, in name and value
    assert lane[2] == django[2]  # byte for byte
    assert lane[3] == django[3]  # as many events stored


@pytest.mark.parametrize(("who", "body"), MATRIX)
def test_the_lane_answers_exactly_as_django_does(harness, e2e_user, e2e_token, who, body):
    owner = e2e_user("customer")
    token = None
    if who != "anonymous":
        actor = owner if who == "own customer" else e2e_user(who.removeprefix("other "))
        token = e2e_token(actor)
    assert_same(*both_answers(harness, owner, body, token))


NEGOTIATION = {
    "Accept: text/html": ({b"accept": b"text/html"}, b"", 406),
    "Accept: application/xml": ({b"accept": b"application/xml"}, b"", 406),
    "?format=xml": ({}, b"format=xml", 404),
    "?format=api": ({}, b"format=api", 404),
    "Accept: application/json": ({b"accept": b"application/json"}, b"", 201),
    "Accept: */*": ({b"accept": b"*/*"}, b"", 201),
    "?format=json": ({}, b"format=json", 201),
}


@pytest.mark.parametrize("case", NEGOTIATION)
def test_content_negotiation_gets_djangos_answer(harness, customer, case):
    """DRF negotiates the response's type from ``Accept`` and ``?format=``: refused (406 or
    404, nothing stored) for what JSONRenderer does not give. The lane serves JSON's own
    Accept headers, and leaves the rest (and any query string) to Django."""
    user, token = customer
    headers, query, expected = NEGOTIATION[case]
    body = b'{"body": "hello"}'
    lane, django = both_answers(harness, user, body, token, headers=headers, query=query)
    assert_same(lane, django)
    assert lane[0] == expected
    assert lane[3] == (1 if expected == 201 else 0)
    served_by_the_lane = expected == 201 and not query
    assert len(harness.django.bodies) == (1 if served_by_the_lane else 2)


@contextlib.contextmanager
def appends_failing(app: DeskstreamApplication) -> Iterator[None]:
    """Every append of ``app`` fails before it reaches the database."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the event store is away")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "_record", refuse)
        yield


def test_a_failed_append_is_djangos_500_on_both_paths(harness, customer, caplog):
    """The append fails after the lane handed it to the committer: the lane answers the
    500 itself, as Django's ``handler500`` answers it, and nothing is stored either way."""
    user, token = customer
    with caplog.at_level(logging.ERROR, logger="django.request"):
        lane, django = both_answers(
            harness, user, b'{"body": "hello"}', token, during=lambda: appends_failing(harness.app)
        )
    assert_same(lane, django)
    assert lane[0] == 500
    assert json.loads(lane[2])["error"] == "server_error"
    assert lane[3] == 0
    assert len(harness.django.bodies) == 1  # the lane answered its own 500
    assert caplog.text.count("Internal Server Error") == 2


def test_a_body_nested_50000_levels_deep_is_a_400_on_both_paths(harness, customer):
    user, token = customer
    body = b'{"body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    lane, django = both_answers(harness, user, body, token)
    assert_same(lane, django)
    assert lane[0] == 400
    data = json.loads(lane[2])
    assert data["error"] == "parse_error"
    assert "nested more than" in data["detail"]
    assert lane[3] == 0


def test_the_lane_is_on_with_the_configuration_it_was_verified_against(harness):
    assert harness.lane.enabled, (
        "the message lane switched itself off (see the log): run these tests against the "
        "new configuration and update VERIFIED in command_api/lane.py if the lane still "
        "answers as Django does"
    )


def test_another_middleware_switches_the_lane_off(harness, customer, settings, caplog):
    """A middleware the lane was not verified with (here one that adds a header to every
    response): the lane serves nothing, says why, and Django's answer carries the header."""
    user, token = customer
    settings.MIDDLEWARE = [
        *VERIFIED["MIDDLEWARE"],
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    harness.django = Counted(SyncChainASGIHandler())  # Django's path with that middleware
    with caplog.at_level(logging.WARNING, logger="command_api.lane"):
        lane = harness.build(enabled=True)
    assert not lane.enabled
    assert "Message lane off" in caplog.text
    assert "XFrameOptionsMiddleware" in caplog.text
    tid = harness.open_ticket(user)
    status, headers, _ = harness.run(
        request(lane, messages_path(tid), b'{"body": "hello"}', token=token)
    )
    assert status == 201
    assert headers[b"x-frame-options"] == b"DENY"
    assert harness.django.bodies == [b'{"body": "hello"}']


SETTINGS_OFF: dict[str, Any] = {
    "DEBUG": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 3600,
    "PREPEND_WWW": True,
    "DISALLOWED_USER_AGENTS": [re.compile("bot")],
    "USE_X_FORWARDED_HOST": True,
    "FORCE_SCRIPT_NAME": "/desk",
}


@pytest.mark.parametrize("name", SETTINGS_OFF)
def test_a_setting_that_makes_djangos_answer_depend_on_the_request_switches_the_lane_off(
    harness, settings, caplog, name
):
    setattr(settings, name, SETTINGS_OFF[name])
    with caplog.at_level(logging.WARNING, logger="command_api.lane"):
        lane = harness.build(enabled=True)
    assert not lane.enabled
    assert f"{name} is set" in caplog.text


class PerMinute(UserRateThrottle):
    rate = "1000/min"


VIEW_CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "a throttle": ("throttle classes", {"throttle_classes": [PerMinute]}),
    "another permission": ("permission classes", {"permission_classes": [AllowAny]}),
    "no authentication": ("authentication classes", {"authentication_classes": []}),
    "another parser": (
        "parser classes",
        {"parser_classes": [*MessagesView.parser_classes, FormParser]},
    ),
    "another renderer": (
        "renderer classes",
        {"renderer_classes": [*MessagesView.renderer_classes, BrowsableAPIRenderer]},
    ),
    "a versioning scheme": ("versioning class", {"versioning_class": HostNameVersioning}),
}


@pytest.mark.parametrize("change", VIEW_CHANGES)
def test_a_view_other_than_the_verified_one_switches_the_lane_off(harness, caplog, change):
    what, attributes = VIEW_CHANGES[change]
    view = type("ChangedMessagesView", (MessagesView,), attributes)
    with caplog.at_level(logging.WARNING, logger="command_api.lane"):
        lane = harness.build(enabled=True, messages=route(GET=MessageListView, POST=view))
    assert not lane.enabled
    assert what in caplog.text


def test_a_no_op_on_a_stale_ticket_in_hand_is_decided_again_on_the_stored_one(harness, customer):
    """Another process changed the ticket's priority. Setting it back changes nothing on
    the ticket this process has in hand, but changes the stored ticket: the attempt on the
    loop must not answer it as a no-op, and the usual path then records the change."""
    user, _ = customer
    tid = harness.open_ticket(user)  # medium, in hand at version 1
    agent = Actor("agent-1", Role.AGENT)
    other = DeskstreamApplication(eventstore_env(settings.DATABASES["default"], 2))
    try:
        with harness.blocker.unblock():
            other.edit_ticket(tid, Actor("agent-2", Role.AGENT), priority="high")  # v2
    finally:
        other.close()

    def back_to_medium(ticket: Ticket) -> None:
        ticket.change_priority(priority="medium", actor_id=agent.id, actor_role=agent.role)

    assert harness.run(harness.app._try_update(Ticket, tid, back_to_medium)) is None
    assert harness.version(tid) == 2  # nothing appended
    with harness.blocker.unblock():
        result = harness.app.edit_ticket(tid, agent, priority="medium")
        assert harness.app.get_ticket(tid).priority.value == "medium"
    assert (result.version, result.position is not None) == (3, True)


def test_a_throttled_message_is_the_same_429_on_both_paths(harness, customer, settings):
    """The message limit (``MessageThrottle`` on Django's path, the same check on the lane):
    the same 429, Retry-After and error body, and nothing stored."""
    from infra.ratelimit import policy
    from infra.ratelimit.limiter import limiter

    user, token = customer
    settings.RATE_LIMITS = True
    # Counts of this test alone: user ids repeat when the test database is created anew.
    settings.CHANNELS_PREFIX = f"test.lane.{user.email}."
    limiter.cache_clear()
    limits = {**policy.DEFAULTS, "messages": {"per_user": 1, "per_ip": 0, "window_seconds": 3600}}
    with harness.blocker.unblock():
        policy.store(limits, by="test")
        assert policy.check("messages", str(user.pk), None) is None  # the hour's one message
    try:
        lane, django = both_answers(harness, user, b'{"body": "hello"}', token)
    finally:
        with harness.blocker.unblock():
            policy.store(policy.DEFAULTS, by="test")
        limiter.cache_clear()
    # The two answers came a moment apart: a second may have passed between them.
    waits = [int(answer[1][b"retry-after"]) for answer in (lane, django)]
    assert abs(waits[0] - waits[1]) <= 1
    django = (
        django[0],
        {**django[1], b"retry-after": lane[1][b"retry-after"]},
        django[2].replace(b"in %d seconds" % waits[1], b"in %d seconds" % waits[0]),
        django[3],
    )
    assert_same(lane, django)
    assert lane[0] == 429
    assert json.loads(lane[2]) == {
        "error": "throttled",
        "detail": f"Request was throttled. Expected available in {waits[0]} seconds.",
    }
    assert lane[3] == 0
    assert len(harness.django.bodies) == 1  # the lane answered its own 429
