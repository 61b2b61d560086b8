"""The message lane (ADR 0024) in front of the real Django ASGI handler, in this process:
what it serves itself, what it hands to Django (untouched, with nothing appended), and that
its answers are Django's answers.

Users and sessions are committed (the lane reads sessions on a connection of its own), the
application appends to the test database with group commit, and the downstream is the same
``SyncChainASGIHandler`` that ``config.asgi`` serves, wrapped to count what reaches it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.utils import timezone

from command_api import application as application_module
from command_api.application import Actor, DeskstreamApplication, eventstore_env
from command_api.lane import MessageLane
from config.urls import MessagesEndpoint
from domain.lifecycle import Role
from infra.auth.tokens import AsyncSessions
from infra.postgres.event_source import conninfo_from_django
from infra.server.handler import SyncChainASGIHandler
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

    def build(self, enabled: bool) -> MessageLane:
        return MessageLane(
            self.django,
            application=lambda: self.app,
            sessions=self.sessions,
            view=MessagesEndpoint,
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
        "query_string": b"",
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


@pytest.mark.parametrize(("who", "body"), MATRIX)
def test_the_lane_answers_exactly_as_django_does(harness, e2e_user, e2e_token, who, body):
    """The same command on two tickets in the same state, once with the lane and once
    without: the same status, headers (but the date) and body (but the ids)."""
    owner = e2e_user("customer")
    token = None
    if who != "anonymous":
        actor = owner if who == "own customer" else e2e_user(who.removeprefix("other "))
        token = e2e_token(actor)
    answers = []
    for lane in (harness.lane, harness.build(enabled=False)):
        tid = harness.open_ticket(owner)
        status, headers, content = harness.run(request(lane, messages_path(tid), body, token=token))
        headers.pop(b"date", None)
        answers.append((status, headers, content.replace(str(tid).encode(), b"<id>")))
    (lane_status, lane_headers, lane_body), (django_status, django_headers, django_body) = answers
    assert lane_status == django_status
    assert lane_headers.keys() == django_headers.keys()
    for name in lane_headers:
        if name not in (b"content-length",):  # positions differ in their digits
            assert lane_headers[name] == django_headers[name], name
    lane_data, django_data = json.loads(lane_body), json.loads(django_body)
    assert lane_data.keys() == django_data.keys()
    lane_data.pop("position", None)
    django_data.pop("position", None)
    assert lane_data == django_data
