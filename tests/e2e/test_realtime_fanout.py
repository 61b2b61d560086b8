"""Real time over several server processes (ADR 0044): each frame published once per
cluster, whatever the number of processes; the publisher fails over without a gap.

Every test runs its servers with a channel prefix of its own, so they elect their own
publisher and report their own counters (``<prefix>push:stats:<process>`` in Redis), apart
from the other servers of the session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.realtime.stats import read_fanout
from tests.conftest import LiveServer, free_port, start_server
from tests.e2e.test_realtime import FAST, WS, _redis, _stop, open_ticket, post
from tests.support.redis import redis_server_binary, redis_url

WAIT = 15.0


@pytest.fixture
def people(e2e_user: Any, e2e_token: Any) -> Callable[[str], tuple[Any, str]]:
    def make(role: str) -> tuple[Any, str]:
        user = e2e_user(role)
        return user, e2e_token(user)

    return make


class Cluster:
    """Server processes sharing one channel prefix (so one publisher, one set of counters),
    started on demand and kept for the module: server starts are the slow part."""

    def __init__(self, redis: str, **env: str) -> None:
        self.redis = redis
        self.env = env
        self.prefix = f"deskstream.test.fanout.{uuid.uuid4().hex[:10]}."
        self.servers: list[LiveServer] = []

    def grow(self, n: int) -> list[LiveServer]:
        """At least ``n`` live servers (each new one joins as a follower)."""
        self.servers = [s for s in self.servers if s.proc.poll() is None]
        while len(self.servers) < n:
            server = start_server(
                {
                    **FAST,
                    "DESKSTREAM_REDIS_URL": self.redis,
                    "DESKSTREAM_CHANNELS_PREFIX": self.prefix,
                    "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",  # the push projector only
                    # Followers try to take over once a second: a killed publisher's
                    # successor starts after the commands a test sends right after the kill
                    # (most likely), and before the sockets' silence timeout (1.5 s).
                    "DESKSTREAM_PUSH_FAILOVER": "1.0",
                    **self.env,
                }
            )
            server.prefix = self.prefix  # type: ignore[attr-defined]
            server.redis = self.redis  # type: ignore[attr-defined]
            self.servers.append(server)
        return self.servers

    def stop(self) -> None:
        for server in self.servers:
            if server.proc.poll() is None:
                server.stop()


@pytest.fixture(scope="module")
def cluster(django_db_setup: Any) -> Iterator[Cluster]:
    started = Cluster(redis_url())
    yield started
    started.stop()


def totals(server: LiveServer) -> dict[str, int]:
    """The counters of every live process of ``server``'s cluster, summed."""
    found = read_fanout(server.redis, server.prefix)  # type: ignore[attr-defined]
    keys = ("events", "published", "delivered", "duplicates")
    return {k: sum(int(c.get(k, 0)) for c in found.values()) for k in keys}


def by_process(server: LiveServer) -> dict[int, dict[str, str]]:
    found = read_fanout(server.redis, server.prefix)  # type: ignore[attr-defined]
    return {int(pid.split(":")[1]): c for pid, c in found.items()}


def settled(server: LiveServer) -> dict[str, int]:
    """The counters once two reports in a row (every 0.3 s) bring nothing new."""
    last = totals(server)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(0.7)
        now = totals(server)
        if now == last:
            return now
        last = now
    raise AssertionError("the counters kept moving with no command sent")


def counted(server: LiveServer, before: dict[str, int], **want: int) -> dict[str, int]:
    """Wait until the counters reported since ``before`` reach ``want``; the differences."""
    deadline = time.monotonic() + WAIT
    while True:
        now = totals(server)
        diff = {k: now[k] - before[k] for k in now}
        if all(diff[k] >= v for k, v in want.items()) or time.monotonic() > deadline:
            return diff
        time.sleep(0.1)


def leads(server: LiveServer) -> None:
    """Wait until ``server``'s process reports that it publishes (it holds the lock)."""
    deadline = time.monotonic() + WAIT
    while by_process(server).get(server.proc.pid, {}).get("publishing") != "1":
        assert time.monotonic() < deadline, "the first server never became the publisher"
        time.sleep(0.1)


@pytest.mark.slow
def test_fan_out_work_per_event_does_not_grow_with_server_processes(
    cluster: Cluster, people: Any
) -> None:
    """With 1, 2 and 3 processes, each holding a customer's and an agent's socket on the
    ticket: per message, the same 2 group messages are published (the ticket's group and
    the customer's notification) by one process, each socket gets its frame once, and no
    process drops a copy."""
    _, customer = people("customer")
    _, agent = people("agent")
    servers = cluster.grow(1)
    leads(servers[0])
    ticket = open_ticket(servers[0], customer)
    sockets: list[WS] = []
    per_event = []
    for n in (1, 2, 3):
        servers = cluster.grow(n)
        for token in (customer, agent):
            ws = WS(servers[-1], token)
            ws.subscribe(stream="ticket", ticket_id=ticket["id"])
            sockets.append(ws)
        before = settled(servers[0])
        posted = [post(servers[i % n], agent, ticket["id"], f"to {n} #{i}") for i in range(3)]
        for ws in sockets:
            assert [f["position"] for f in ws.events(3)] == [p["position"] for p in posted]
        diff = counted(servers[0], before, events=3, delivered=3 * len(sockets))
        per_event.append(
            (
                n,
                diff["published"] / diff["events"],
                diff["delivered"] / diff["events"],
                diff["duplicates"],
            )
        )
    assert per_event == [(1, 2.0, 2.0, 0), (2, 2.0, 4.0, 0), (3, 2.0, 6.0, 0)]
    publishing = [pid for pid, c in by_process(servers[0]).items() if int(c["published"])]
    assert publishing == [servers[0].proc.pid]  # the first process leads; nobody else publishes
    for ws in sockets:
        ws.quiet()  # no copy came late
        ws.close()


@pytest.mark.slow
def test_the_publisher_fails_over_without_a_gap_or_a_copy(cluster: Cluster, people: Any) -> None:
    """The publishing process is killed (no goodbye); events stored before another process
    takes over reach the sockets from the log, then the new publisher's frames, in order."""
    _, customer = people("customer")
    _, agent = people("agent")
    first, second, *_ = cluster.grow(2)
    leads(first)
    ticket = open_ticket(second, customer)
    ws = WS(second, customer)
    ws.subscribe(stream="ticket", ticket_id=ticket["id"])
    queue = WS(second, agent)
    queue.subscribe(stream="queue")
    before = post(second, agent, ticket["id"], "before")
    assert [f["position"] for f in ws.events(1)] == [before["position"]]

    first.proc.kill()
    first.proc.wait(10)
    during = [post(second, agent, ticket["id"], f"during {i}") for i in range(3)]
    with second.client(customer) as c:
        r = c.post("/api/tickets", json={"subject": "while failing over", "description": "x"})
    assert r.status_code == 201, r.text
    after = post(second, agent, ticket["id"], "after")
    got = ws.events(4)
    assert [f["position"] for f in got] == [p["position"] for p in [*during, after]]
    assert [f["data"]["body"] for f in got] == ["during 0", "during 1", "during 2", "after"]
    [created] = queue.events(1)
    assert (created["kind"], created["ticket_id"]) == ("ticket_created", r.json()["id"])
    ws.quiet()
    queue.quiet()
    deadline = time.monotonic() + WAIT
    while True:  # a follower took over (the counters are reported every 0.3 s)
        survivors = {p: c for p, c in by_process(second).items() if p != first.proc.pid}
        if any(c.get("publishing") == "1" for c in survivors.values()):
            break
        assert time.monotonic() < deadline, "no follower took over"
        time.sleep(0.1)
    assert sum(int(c["duplicates"]) for c in survivors.values()) == 0
    ws.close()
    queue.close()


@pytest.mark.slow
def test_a_redis_restart_then_a_failover_leave_no_gap(people: Any, django_db_setup: Any) -> None:
    """Two processes on a Redis of this test's own: the follower's sockets hear the leader's
    frames through Redis. Redis restarts (frames stored meanwhile reach them from the log
    once the heartbeats went silent), then the leader dies: no gap, no copy, in order."""
    redis_server_binary()
    port = free_port()
    redis = _redis(port)
    pair = Cluster(f"redis://127.0.0.1:{port}/0")
    try:
        leader, follower = pair.grow(2)
        leads(leader)
        _, customer = people("customer")
        _, agent = people("agent")
        ticket = open_ticket(follower, customer)
        ws = WS(follower, customer)
        ws.subscribe(stream="ticket", ticket_id=ticket["id"])
        posted = [post(leader, agent, ticket["id"], "before")]
        assert [f["position"] for f in ws.events(1)] == [posted[-1]["position"]]

        _stop(redis)
        posted.append(post(follower, agent, ticket["id"], "while Redis is down"))
        assert [f["position"] for f in ws.events(1)] == [posted[-1]["position"]]
        redis = _redis(port)
        posted.append(post(leader, agent, ticket["id"], "after Redis is back"))
        assert [f["position"] for f in ws.events(1)] == [posted[-1]["position"]]

        leader.proc.kill()
        leader.proc.wait(10)
        posted += [post(follower, agent, ticket["id"], f"failing over {i}") for i in range(2)]
        got = ws.events(2)
        assert [f["position"] for f in got] == [p["position"] for p in posted[-2:]]
        ws.quiet()
        ws.close()
    finally:
        pair.stop()
        _stop(redis)


@pytest.mark.slow
def test_with_local_fan_out_each_process_delivers_its_own_sockets_frames(
    people: Any, django_db_setup: Any
) -> None:
    """``DESKSTREAM_PUSH_FANOUT=local``: both processes follow the log and hand each frame to
    their own sockets only, without Redis; typing still crosses processes through Redis."""
    pair = Cluster(redis_url(), DESKSTREAM_PUSH_FANOUT="local")
    try:
        one, two = pair.grow(2)
        customer_user, customer = people("customer")
        _, agent = people("agent")
        ticket = open_ticket(one, customer)
        sockets = [WS(one, customer), WS(two, agent)]
        for ws in sockets:
            ws.subscribe(stream="ticket", ticket_id=ticket["id"])
        before = settled(one)
        posted = [
            post(server, agent, ticket["id"], f"local {i}") for i, server in enumerate(pair.servers)
        ]
        for ws in sockets:
            assert [f["position"] for f in ws.events(2)] == [p["position"] for p in posted]
        diff = counted(one, before, delivered=4)
        # Each process turned both events into 2 group messages for its own sockets.
        assert (diff["events"], diff["published"], diff["delivered"], diff["duplicates"]) == (
            4,
            8,
            4,
            0,
        )
        sockets[0].send(type="typing", ticket_id=ticket["id"])
        _, typing = sockets[1].until(lambda f: f["type"] == "typing")
        assert typing["user_id"] == str(customer_user.pk)
        for ws in sockets:
            ws.quiet()
            ws.close()
    finally:
        pair.stop()
