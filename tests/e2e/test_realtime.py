"""WebSocket push through a real client (``websockets``) against uvicorn serving ``config.asgi``.

The servers run with a fast heartbeat (0.3 s) and silence timeout (1.5 s) so that recovery
paths finish within a test; every wait is for a frame, with a timeout, never a bare sleep.
The channel layer is Redis when ``DESKSTREAM_REDIS_URL`` is set (``make test`` sets it), the
Redis-restart test starts and restarts its own ``redis-server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from infra.realtime import consumer
from tests.conftest import LiveServer, free_port, start_server
from tests.support.redis import redis_server_binary, redis_url

FAST = {
    "DESKSTREAM_WS_SYNC_INTERVAL": "0.3",
    "DESKSTREAM_WS_SILENCE_TIMEOUT": "1.5",
    "DESKSTREAM_WS_TYPING_INTERVAL": "30",
}
WAIT = 10.0  # seconds to wait for one frame


@pytest.fixture(scope="module", params=["projectors-in-process", "push-in-web-server"])
def rt(request: Any, django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    """Both layouts: every projector in threads of the server (the push projector reading
    the shared log), and ``make run``'s (the push projector alone in the web server, handed
    that process's own appends in memory, ADR 0021)."""
    in_web = request.param == "push-in-web-server"
    layout = {"DESKSTREAM_PROJECTORS_IN_PROCESS": "0"} if in_web else {}
    server = start_server({**FAST, **layout})
    yield server
    server.stop()


class WS:
    """A test client: JSON frames in and out, waits that name what they wait for."""

    def __init__(
        self,
        server: LiveServer,
        token: str | None = None,
        *,
        ready: bool = True,
        batch: bool = False,
    ):
        url = server.url.replace("http://", "ws://") + "/ws/"
        query = ([f"token={token}"] if token else []) + (["batch=1"] if batch else [])
        if query:
            url += "?" + "&".join(query)
        self.conn: ClientConnection = connect(url, proxy=None, open_timeout=10, legacy=True)
        self.buffered: list[dict[str, Any]] = []  # the rest of an array of frames (batch)
        self.arrays = 0  # messages that held an array of frames
        self.hello = self.recv() if (token and ready) else None

    def send(self, **frame: Any) -> None:
        self.conn.send(json.dumps(frame))

    def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        if not self.buffered:
            data = json.loads(self.conn.recv(timeout))
            if isinstance(data, list):
                self.arrays += 1
                assert data, "an empty array of frames"
            self.buffered = data if isinstance(data, list) else [data]
        return self.buffered.pop(0)

    def until(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Frames before the first that matches ``pred``, and that one."""
        before: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(max(deadline - time.monotonic(), 0.01))
            if pred(frame):
                return before, frame
            before.append(frame)

    def subscribe(self, **spec: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Subscribe; return (the replayed frames, the ``subscribed`` frame)."""
        self.send(type="subscribe", **spec)
        return self.until(lambda f: f["type"] in ("subscribed", "error"))

    def events(self, n: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < n:
            frame = self.recv(timeout)
            if frame["type"] == "event":
                got.append(frame)
        return got

    def quiet(self) -> None:
        """Prove nothing is queued for this client: a ping's pong comes next."""
        self.send(type="ping", ref="q")
        assert self.recv() == {"type": "pong", "ref": "q"}

    def closed(self, timeout: float = WAIT) -> ConnectionClosed:
        """Read until the server closes the socket; return how it closed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.recv(max(deadline - time.monotonic(), 0.01))
            except ConnectionClosed as closed:
                return closed
        raise AssertionError(f"the socket is still open after {timeout} s")

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def people(e2e_user: Any, e2e_token: Any) -> Callable[[str], tuple[Any, str]]:
    def make(role: str) -> tuple[Any, str]:
        user = e2e_user(role)
        return user, e2e_token(user)

    return make


def open_ticket(server: LiveServer, token: str, subject: str = "Printer on fire") -> dict[str, Any]:
    with server.client(token) as c:
        r = c.post("/api/tickets", json={"subject": subject, "description": "smoke"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def post(server: LiveServer, token: str, ticket_id: str, body: str, **extra: Any) -> Any:
    with server.client(token) as c:
        r = c.post(f"/api/tickets/{ticket_id}/messages", json={"body": body, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def bodies(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["body"] for f in frames if f["kind"] == "message_posted"]


# ------------------------------------------------------------------------------ auth
def test_a_socket_without_a_valid_token_is_refused_with_4401(rt: LiveServer) -> None:
    ws = WS(rt)
    ws.send(type="subscribe", stream="queue")
    assert ws.recv()["error"] == "not_authenticated"
    closed = ws.closed()
    assert (closed.rcvd.code, closed.rcvd.reason) == (4401, "not_authenticated")  # type: ignore[union-attr]

    ws = WS(rt, "not-a-token", ready=False)
    assert ws.recv()["error"] == "token_invalid"
    assert ws.closed().rcvd.code == 4401  # type: ignore[union-attr]


def test_an_expired_token_closes_the_socket_with_4401_token_expired(
    rt: LiveServer, e2e_user: Any, django_db_blocker: Any
) -> None:
    from django.test import override_settings

    from infra.auth.tokens import start_session

    user = e2e_user("customer")
    with django_db_blocker.unblock(), override_settings(JWT_ACCESS_TTL=timedelta(seconds=2)):
        token = start_session(user).access
    ws = WS(rt, token)
    assert ws.hello is not None
    assert ws.hello["type"] == "ready"
    _, error = ws.until(lambda f: f["type"] == "error", timeout=6)
    assert error["error"] == "token_expired"
    closed = ws.closed()
    assert (closed.rcvd.code, closed.rcvd.reason) == (4401, "token_expired")  # type: ignore[union-attr]
    # Reconnecting with the same (expired) token: refused at once, same code.
    again = WS(rt, token, ready=False)
    assert again.recv()["error"] == "token_expired"
    assert again.closed().rcvd.code == 4401  # type: ignore[union-attr]


def test_a_deactivated_agents_sockets_close_at_once(rt: LiveServer, people: Any) -> None:
    """An admin deactivates an agent: the agent's open socket closes now (4401
    session_revoked), not at its next session re-check (a minute later by default); another
    user's socket stays open."""
    agent, token = people("agent")
    _, admin_token = people("admin")
    _, other_token = people("agent")
    ws, other = WS(rt, token), WS(rt, other_token)
    ws.subscribe(stream="queue")
    with rt.client(admin_token) as c:
        r = c.post(f"/api/admin/agents/{agent.pk}/deactivate")
    assert r.status_code == 200, r.text
    _, error = ws.until(lambda f: f["type"] == "error", timeout=5)
    assert error["error"] == "session_revoked"
    closed = ws.closed(timeout=5)
    assert (closed.rcvd.code, closed.rcvd.reason) == (4401, "session_revoked")  # type: ignore[union-attr]
    other.send(type="ping", ref="still-open")  # the other agent's socket is untouched
    other.until(lambda f: f == {"type": "pong", "ref": "still-open"})
    other.close()


def test_the_token_may_come_as_the_first_frame(rt: LiveServer, people: Any) -> None:
    _, token = people("customer")
    ws = WS(rt)
    ws.send(type="auth", token=token)
    assert ws.recv()["type"] == "ready"
    ws.close()


def test_a_frame_nested_too_deep_gets_an_invalid_frame_and_the_socket_stays_open(
    rt: LiveServer, people: Any
) -> None:
    _, token = people("customer")
    ws = WS(rt, token)
    for depth in (50_000, 33):  # far deeper than the decoder's recursion; one past the limit
        ws.conn.send("[" * depth + "]" * depth)
        frame = ws.recv()
        assert (frame["type"], frame["error"]) == ("error", "invalid"), frame
    ws.conn.send('{"type": "ping", "ref": ' + "[" * 20 + "]" * 20 + "}")  # deep enough: fine
    assert ws.recv()["type"] == "pong"
    ws.quiet()
    ws.close()


# ------------------------------------------------------------------------------ who sees what
def test_a_forbidden_subscription_gets_an_error_frame_and_the_socket_stays_open(
    rt: LiveServer, people: Any
) -> None:
    _, alice = people("customer")
    _, bob = people("customer")
    theirs = open_ticket(rt, alice)
    mine = open_ticket(rt, bob)
    ws = WS(rt, bob)
    _, refused = ws.subscribe(stream="ticket", ticket_id=theirs["id"], after_position=0)
    assert refused == {
        "type": "error",
        "error": "forbidden",
        "detail": "You may not read this ticket.",
        "sub": f"ticket:{theirs['id']}",
    }
    _, refused = ws.subscribe(stream="queue")
    assert refused["error"] == "forbidden"
    _, refused = ws.subscribe(stream="user", user_id="999999")
    assert refused["error"] == "forbidden"
    replayed, ok = ws.subscribe(stream="ticket", ticket_id=mine["id"], after_version=0)
    assert ok["type"] == "subscribed"
    assert [(f["kind"], f["version"], f["position"]) for f in replayed] == [
        ("ticket_created", 1, mine["position"])
    ]
    ws.close()


def test_customers_never_get_internal_notes_agents_do(rt: LiveServer, people: Any) -> None:
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    c_ws, a_ws = WS(rt, customer), WS(rt, agent)
    c_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    a_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    note = post(rt, agent, ticket["id"], "VIP, be nice", internal=True)
    reply = post(rt, agent, ticket["id"], "On it")
    [seen_by_customer] = c_ws.events(1)
    assert seen_by_customer["data"]["body"] == "On it"
    assert seen_by_customer["data"]["internal"] is False
    # The customer's version counts public events: the reply is their 2nd, not v3 (issue 21).
    assert (seen_by_customer["version"], seen_by_customer["position"]) == (2, reply["position"])
    assert reply["version"] == 3
    seen_by_agent = a_ws.events(2)
    assert bodies(seen_by_agent) == ["VIP, be nice", "On it"]
    assert [f["position"] for f in seen_by_agent] == [note["position"], reply["position"]]
    assert [f["version"] for f in seen_by_agent] == [2, 3]  # staff: the real versions
    assert all("public_version" not in f for f in [seen_by_customer, *seen_by_agent])
    c_ws.quiet()  # nothing else (the note) is waiting for the customer
    # Resuming from the start does not reveal it either.
    replayed, _ = WS(rt, customer).subscribe(
        stream="ticket", ticket_id=ticket["id"], after_version=0
    )
    assert "VIP, be nice" not in json.dumps(replayed)
    c_ws.close()
    a_ws.close()


def test_a_customers_frames_and_resume_count_public_events_only(
    rt: LiveServer, people: Any
) -> None:
    """Issue 21: internal notes leave no gap in a customer's versions, live, on resume by
    version (their own numbering) and in their notifications; staff get the real ones."""
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    c_ws, a_ws, mine = WS(rt, customer), WS(rt, agent), WS(rt, customer)
    c_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    a_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    mine.subscribe(stream="user")
    said = []
    for i in range(3):
        post(rt, agent, ticket["id"], f"note {i}", internal=True)
        said.append(post(rt, agent, ticket["id"], f"reply {i}"))
    live = c_ws.events(3)
    assert [(f["data"]["body"], f["version"]) for f in live] == [
        ("reply 0", 2), ("reply 1", 3), ("reply 2", 4),
    ]  # fmt: skip
    assert [f["version"] for f in a_ws.events(6)] == [2, 3, 4, 5, 6, 7]
    notified = mine.events(3)
    assert [(f["data"]["reason"], f["version"]) for f in notified] == [("new_message", 2),
        ("new_message", 3), ("new_message", 4)]  # fmt: skip
    # Resuming from their version 2: exactly the public events after it, as they number them.
    replayed, subscribed = WS(rt, customer).subscribe(
        stream="ticket", ticket_id=ticket["id"], after_version=2
    )
    assert [(f["data"]["body"], f["version"]) for f in replayed] == [("reply 1", 3), ("reply 2", 4)]
    assert [f["position"] for f in replayed] == [s["position"] for s in said[1:]]
    assert subscribed["replayed"] == 2
    # The REST view (rebuilt from the events: no read-model projector in one layout) agrees.
    with rt.client(customer) as c:
        r = c.get(f"/api/tickets/{ticket['id']}", params={"as_of": "2099-01-01T00:00:00Z"})
    assert (r.status_code, r.json()["version"]) == (200, 4)
    # Staff resuming by (real) version 5 get v6 and v7: the note and the reply.
    replayed, _ = WS(rt, agent).subscribe(stream="ticket", ticket_id=ticket["id"], after_version=5)
    assert [(f["data"]["body"], f["version"]) for f in replayed] == [
        ("note 2", 6), ("reply 2", 7),
    ]  # fmt: skip
    for ws in (c_ws, a_ws, mine):
        ws.close()


def test_the_agent_queue_gets_new_tickets_and_assignments_live(rt: LiveServer, people: Any) -> None:
    agent_user, agent = people("agent")
    _, customer = people("customer")
    queue = WS(rt, agent)
    queue.subscribe(stream="queue")
    mine = WS(rt, agent)
    mine.subscribe(stream="user")
    ticket = open_ticket(rt, customer, "New in the queue")
    [created] = queue.events(1)
    assert (created["kind"], created["ticket_id"], created["version"], created["position"]) == (
        "ticket_created",
        ticket["id"],
        1,
        ticket["position"],
    )
    assert created["data"]["subject"] == "New in the queue"
    with rt.client(customer) as c:  # the customer assigns nothing, an admin does
        assert c.post(f"/api/tickets/{ticket['id']}/assign", json={"agent_id": 1}).status_code in (
            403,
            404,
        )
    _, admin = people("admin")
    with rt.client(admin) as c:
        r = c.post(f"/api/tickets/{ticket['id']}/assign", json={"agent_id": agent_user.pk})
    assert r.status_code == 200, r.text
    assigned, status = queue.events(2)
    assert assigned["kind"] == "assignment_changed"
    assert assigned["data"]["agent_id"] == str(agent_user.pk)
    assert (status["kind"], status["data"]["to_status"]) == ("status_changed", "assigned")
    assert status["position"] == r.json()["position"]
    [note] = mine.events(1)
    assert (note["kind"], note["data"]["reason"], note["ticket_id"]) == (
        "notification",
        "assigned_to_you",
        ticket["id"],
    )
    queue.close()
    mine.close()


# ------------------------------------------------------------------------------ resume
def test_resume_after_a_disconnect_gets_exactly_the_missed_frames_in_order(
    rt: LiveServer, people: Any
) -> None:
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    ws = WS(rt, customer)
    ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    post(rt, agent, ticket["id"], "first")
    [first] = ws.events(1)
    ws.close()
    missed = [post(rt, agent, ticket["id"], f"missed {i}") for i in range(3)]
    post(rt, agent, ticket["id"], "secret", internal=True)

    ws = WS(rt, customer)
    replayed, subscribed = ws.subscribe(
        stream="ticket", ticket_id=ticket["id"], after_position=first["position"]
    )
    assert bodies(replayed) == ["missed 0", "missed 1", "missed 2"]
    assert [f["position"] for f in replayed] == [m["position"] for m in missed]
    assert subscribed["replayed"] == 3
    live = post(rt, agent, ticket["id"], "live again")
    [frame] = ws.events(1)
    assert (frame["data"]["body"], frame["position"]) == ("live again", live["position"])
    ws.quiet()
    ws.close()

    # By version instead of position: the same frames, nothing twice.
    ws = WS(rt, customer)
    replayed, _ = ws.subscribe(
        stream="ticket", ticket_id=ticket["id"], after_version=first["version"]
    )
    assert bodies(replayed) == ["missed 0", "missed 1", "missed 2", "live again"]
    assert len({f["position"] for f in replayed}) == len(replayed)
    ws.close()


def test_a_replay_longer_than_the_writer_queues_arrives_whole_in_order_then_live(
    rt: LiveServer, people: Any
) -> None:
    """More missed frames than a socket queues for its writer at once (``OUTBOX_HIGH``,
    ADR 0051): the replay waits for the client to read, and nothing is lost or repeated."""
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    count = consumer.OUTBOX_HIGH + 40
    with rt.client(agent) as c:
        posted = []
        for i in range(count):
            r = c.post(f"/api/tickets/{ticket['id']}/messages", json={"body": f"m{i}"})
            assert r.status_code == 201, r.text
            posted.append(r.json()["position"])
    ws = WS(rt, customer)
    replayed, subscribed = ws.subscribe(stream="ticket", ticket_id=ticket["id"], after_version=1)
    assert [f["position"] for f in replayed if f["kind"] == "message_posted"] == posted
    assert bodies(replayed) == [f"m{i}" for i in range(count)]
    positions = [f["position"] for f in replayed]
    assert positions == sorted(set(positions))  # in order, nothing twice
    assert subscribed["replayed"] == len(replayed)
    live = post(rt, agent, ticket["id"], "live")
    [frame] = ws.events(1)
    assert frame["position"] == live["position"]
    ws.quiet()
    ws.close()


def test_a_client_that_takes_batches_gets_the_same_frames_joined_into_arrays(
    rt: LiveServer, people: Any
) -> None:
    """``?batch=1`` (the web app asks in its auth frame): frames that pile up for the writer
    go out as one JSON array (ADR 0057). The same replay and live frames, in the same order,
    as a socket that takes one frame per message; frames it asked for nothing else about
    (the ``ready``, a ``pong``) come as they are."""
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    with rt.client(agent) as c:
        for i in range(consumer.OUTBOX_HIGH + 40):
            r = c.post(f"/api/tickets/{ticket['id']}/messages", json={"body": f"m{i}"})
            assert r.status_code == 201, r.text
    plain, batched = WS(rt, customer), WS(rt, customer, batch=True)
    assert batched.hello is not None
    assert batched.hello["type"] == "ready"
    spec = {"stream": "ticket", "ticket_id": ticket["id"], "after_version": 1}
    one, one_subscribed = plain.subscribe(**spec)
    joined, joined_subscribed = batched.subscribe(**spec)
    assert joined == one
    assert joined_subscribed == one_subscribed
    assert batched.arrays > 0, "a replay of this length goes out in arrays"
    assert plain.arrays == 0
    live = post(rt, agent, ticket["id"], "live")
    [a] = plain.events(1)
    [b] = batched.events(1)
    assert a == b
    assert b["position"] == live["position"]
    batched.quiet()
    plain.quiet()
    plain.close()
    batched.close()


def test_the_queue_resumes_by_global_position(rt: LiveServer, people: Any) -> None:
    _, agent = people("agent")
    _, customer = people("customer")
    ws = WS(rt, agent)
    start = ws.hello["position"]  # type: ignore[index]
    ws.close()
    opened = [open_ticket(rt, customer, f"while away {i}") for i in range(2)]
    ws = WS(rt, agent)
    replayed, subscribed = ws.subscribe(stream="queue", after_position=start)
    mine = [f for f in replayed if f["ticket_id"] in {t["id"] for t in opened}]
    assert [f["data"]["subject"] for f in mine] == ["while away 0", "while away 1"]
    positions = [f["position"] for f in replayed]
    assert positions == sorted(set(positions))
    assert subscribed["position"] >= opened[-1]["position"]
    ws.close()


def test_a_server_restart_loses_no_update_for_a_client_that_resumes(
    rt: LiveServer, people: Any
) -> None:
    _, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    server = start_server(FAST)
    try:
        ws = WS(server, customer)
        ws.subscribe(stream="ticket", ticket_id=ticket["id"])
        post(server, agent, ticket["id"], "before the restart")
        [seen] = ws.events(1)
        server.stop()
        ws.closed()  # the server went away: the client reconnects and resumes
        during = [post(rt, agent, ticket["id"], f"while down {i}") for i in range(2)]
        server = start_server(FAST)
        ws = WS(server, customer)
        replayed, _ = ws.subscribe(
            stream="ticket", ticket_id=ticket["id"], after_position=seen["position"]
        )
        assert bodies(replayed) == ["while down 0", "while down 1"]
        assert [f["position"] for f in replayed] == [d["position"] for d in during]
        post(server, agent, ticket["id"], "after the restart")
        assert bodies(ws.events(1)) == ["after the restart"]
        ws.close()
    finally:
        server.stop()


# ------------------------------------------------------------------------------ Redis restart
def _redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def test_a_redis_restart_does_not_leave_sockets_open_but_silent(
    rt: LiveServer, people: Any
) -> None:
    redis_server_binary()
    port = free_port()
    redis = _redis(port)
    server = start_server({**FAST, "DESKSTREAM_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    try:
        _, customer = people("customer")
        _, agent = people("agent")
        ticket = open_ticket(server, customer)
        ws = WS(server, customer)
        ws.subscribe(stream="ticket", ticket_id=ticket["id"])
        post(server, agent, ticket["id"], "before")
        assert bodies(ws.events(1)) == ["before"]

        _stop(redis)
        during = post(server, agent, ticket["id"], "while Redis is down")
        [frame] = ws.events(1)  # the heartbeat went silent: the server caught up from the log
        assert (frame["data"]["body"], frame["position"]) == (
            "while Redis is down",
            during["position"],
        )
        refused = WS(server, customer, ready=False)  # a new socket cannot join: 4503
        assert refused.recv()["error"] == "realtime_unavailable"
        assert refused.closed().rcvd.code == 4503  # type: ignore[union-attr]

        redis = _redis(port)
        after = post(server, agent, ticket["id"], "after Redis is back")
        [frame] = ws.events(1)  # no duplicate of the frame published late, then the live one
        assert (frame["data"]["body"], frame["position"]) == (
            "after Redis is back",
            after["position"],
        )
        fresh = WS(server, customer)
        fresh.subscribe(stream="ticket", ticket_id=ticket["id"])
        last = post(server, agent, ticket["id"], "to both")
        for client in (ws, fresh):
            [frame] = client.events(1)
            assert frame["position"] == last["position"]
        ws.close()
        fresh.close()
    finally:
        server.stop()
        _stop(redis)


# ------------------------------------------------------------------------------ ephemeral
def test_typing_is_relayed_to_the_ticket_not_stored_and_rate_limited(
    rt: LiveServer, people: Any
) -> None:
    customer_user, customer = people("customer")
    _, agent = people("agent")
    ticket = open_ticket(rt, customer)
    c_ws, a_ws = WS(rt, customer), WS(rt, agent)
    c_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    a_ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    c_ws.send(type="typing", ticket_id=ticket["id"])
    c_ws.send(type="typing", ticket_id=ticket["id"])  # within the interval: dropped
    c_ws.quiet()  # both handled, and the sender does not hear itself
    _, typing = a_ws.until(lambda f: f["type"] == "typing")
    assert typing == {
        "type": "typing",
        "ticket_id": ticket["id"],
        "user_id": str(customer_user.pk),
        "role": "customer",
        "name": customer_user.first_name,
        "internal": False,
        "sub": f"ticket:{ticket['id']}",
    }
    a_ws.send(type="typing", ticket_id=ticket["id"], internal=True)  # staff only
    a_ws.quiet()
    reply = post(rt, agent, ticket["id"], "typed it")
    for ws in (a_ws, c_ws):
        # Nothing in between: no second typing (rate limit), no internal typing (customer).
        before, message = ws.until(lambda f: f["type"] == "event")
        assert (before, message["position"]) == ([], reply["position"])
    with rt.client(agent) as c:  # not stored: the history has the reply only
        history = c.get(f"/api/tickets/{ticket['id']}/history").json()["events"]
    assert [e["type"] for e in history] == ["TicketOpened", "MessagePosted"]
    c_ws.send(type="typing", ticket_id="8d2f8f6e-0000-4000-8000-000000000000")
    assert c_ws.recv()["error"] == "not_subscribed"
    c_ws.close()
    a_ws.close()


def test_agent_presence_is_shown_live(rt: LiveServer, people: Any) -> None:
    _, watcher = people("agent")
    other_user, other = people("agent")
    uid = str(other_user.pk)
    ws = WS(rt, watcher)
    ws.send(type="subscribe", stream="presence")
    _, snapshot = ws.until(lambda f: f["type"] == "presence_snapshot")
    assert uid not in {a["user_id"] for a in snapshot["agents"] if a["connected"]}

    def next_presence() -> dict[str, Any]:
        return ws.until(lambda f: f["type"] == "presence" and f["user_id"] == uid)[1]

    their_socket = WS(rt, other)
    came = next_presence()
    assert (came["connected"], came["state"]) == (True, "online")
    with rt.client(other) as c:  # the availability toggle is a command on the Agent
        r = c.post("/api/agents/me/availability", json={"availability": "away"})
    assert r.status_code == 200, r.text
    away = next_presence()
    assert (away["availability"], away["state"], away["position"]) == (
        "away",
        "away",
        r.json()["position"],
    )
    their_socket.close()
    gone = next_presence()
    assert (gone["connected"], gone["state"]) == (False, "offline")
    ws.close()


def test_presence_counts_the_sockets_of_every_server_process(rt: LiveServer, people: Any) -> None:
    """Two server processes on one database and one Redis (``rt`` and ``a``): an agent with
    a socket on each stays connected while either is open, snapshots on one process see
    sockets held on the other, and the agents of a server killed with SIGKILL are announced
    offline once its counts expire (its TTL is 2 s here, ``rt`` sweeps every 5 s)."""
    from infra.realtime.presence_redis import RedisPresenceStore

    redis = redis_url()
    prefix = os.environ["DESKSTREAM_CHANNELS_PREFIX"]  # the session's (tests/conftest.py)
    probe = RedisPresenceStore(redis, prefix=f"{prefix}presence:", process_id="probe")
    # Only the push projector in ``a`` (the database is shared with ``rt``, which runs the
    # others): fewer PostgreSQL connections on a shared server.
    a = start_server(
        {
            **FAST,
            "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
            "DESKSTREAM_PRESENCE_TTL": "2",
            "DESKSTREAM_PRESENCE_HEARTBEAT": "0.5",
        }
    )
    b = rt
    try:
        _, watcher = people("agent")
        x_user, x = people("agent")
        y_user, y = people("agent")
        xid, yid = str(x_user.pk), str(y_user.pk)
        y_on_a = WS(a, y)  # ``ready`` came: process a has counted the socket

        ws = WS(b, watcher)
        ws.send(type="subscribe", stream="presence")
        _, snapshot = ws.until(lambda f: f["type"] == "presence_snapshot")
        shown = {f["user_id"]: f["connected"] for f in snapshot["agents"]}
        assert (shown.get(yid), shown.get(xid, False)) == (True, False)  # b sees a's socket

        def next_about(uid: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            return ws.until(lambda f: f["type"] == "presence" and f["user_id"] == uid, 30)

        x_on_a = WS(a, x)
        _, came = next_about(xid)  # announced by process a, heard on process b
        assert (came["connected"], came["state"]) == (True, "online")
        x_on_b = WS(b, x)  # not a change: no frame

        x_on_a.close()
        deadline = time.monotonic() + WAIT
        while asyncio.run(probe.sockets(xid)) != 1:  # process a has uncounted it
            assert time.monotonic() < deadline, "process a never uncounted the closed socket"
            time.sleep(0.05)
        with b.client(x) as c:  # a frame that comes after anything a would have announced
            r = c.post("/api/agents/me/availability", json={"availability": "away"})
        assert r.status_code == 200, r.text
        before, away = next_about(xid)
        assert [f for f in before if f["type"] == "presence" and f["user_id"] == xid] == []
        assert (away["connected"], away["state"], away["position"]) == (
            True,
            "away",
            r.json()["position"],
        )

        x_on_b.close()  # the last socket anywhere
        _, gone = next_about(xid)
        assert (gone["connected"], gone["state"]) == (False, "offline")

        a.proc.kill()  # no goodbye: y's only socket was there
        a.proc.wait(10)
        _, dead = next_about(yid)
        assert (dead["connected"], dead["state"]) == (False, "offline")
        with contextlib.suppress(Exception):
            y_on_a.close()
        ws.close()
    finally:
        if a.proc.poll() is None:
            a.stop()
        asyncio.run(probe.close())
