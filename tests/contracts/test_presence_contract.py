"""The ``PresenceStore`` contract, run against every adapter.

``memory`` is the embedded mode's store (one server process); ``redis`` runs against the
Redis at ``DESKSTREAM_REDIS_URL`` (``scripts/with_services.py`` provides it), under a key
prefix of its own per test so parallel runs on a shared Redis never meet. Without it the
Redis cases fail; they skip only when ``DESKSTREAM_TEST_WITHOUT_REDIS=1`` says Redis is absent
on purpose (``tests/support/redis.py``). Several server processes are several store
instances with their own process ids; the tests that need them, or expiry, run on the Redis
store only (the memory store is one process by definition). Every wait is for an outcome,
with a deadline, never a timing assert.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from infra.realtime.ports import PresenceChange, PresenceStore
from infra.realtime.presence import MemoryPresenceStore, PresenceBoard
from infra.realtime.presence_redis import RedisPresenceStore
from tests.support.redis import redis_url

Factory = Callable[..., PresenceStore]
# Several processes and expiry: the Redis store's cases only (no memory case to skip).
REDIS_ONLY = pytest.mark.parametrize("kind", ["redis"], indirect=True)


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        redis_url()  # fails without Redis, unless its absence is declared
    return str(request.param)


@pytest.fixture
def factory(kind: str) -> Iterator[Factory]:
    """``factory(process_id=..., ttl=..., heartbeat_interval=...)`` -> a store; with Redis,
    every store of one test shares a prefix nobody else uses."""
    prefix = f"test.presence.{uuid.uuid4().hex}:"

    def make(process_id: str = "p1", ttl: float = 20.0, heartbeat_interval: float = 5.0) -> Any:
        if kind == "memory":
            return MemoryPresenceStore()
        return RedisPresenceStore(
            redis_url(),
            prefix=prefix,
            ttl=ttl,
            heartbeat_interval=heartbeat_interval,
            process_id=process_id,
        )

    yield make
    if kind == "redis":
        asyncio.run(_delete(prefix))


async def _delete(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url())
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


async def closing(*stores: PresenceStore) -> None:
    for store in stores:
        await store.close()


# ------------------------------------------------------------------------------ one process
def test_sockets_are_counted_and_the_first_and_last_are_the_changes(factory: Factory) -> None:
    async def body() -> None:
        store = factory()
        try:
            first = await store.connect("7")
            assert first is not None
            assert (first.user_id, first.connected) == ("7", True)
            assert await store.connect("7") is None
            assert await store.sockets("7") == 2
            assert await store.disconnect("7") is None
            assert await store.sockets("7") == 1
            last = await store.disconnect("7")
            assert last is not None
            assert (last.user_id, last.connected) == ("7", False)
            assert last.version > first.version
            assert await store.sockets("7") == 0
            assert await store.disconnect("7") is None  # never counted: nothing to announce
        finally:
            await closing(store)

    run(body)


def test_concurrent_sockets_of_one_user_give_one_change_each_way(factory: Factory) -> None:
    async def body() -> None:
        store = factory()
        try:
            came = await asyncio.gather(*(store.connect("8") for _ in range(10)))
            assert sum(c is not None for c in came) == 1
            assert await store.sockets("8") == 10
            went = await asyncio.gather(*(store.disconnect("8") for _ in range(10)))
            assert [c.connected for c in went if c is not None] == [False]
        finally:
            await closing(store)

    run(body)


def test_the_view_lists_connected_users_with_their_versions(factory: Factory) -> None:
    async def body() -> None:
        store = factory()
        try:
            a = await store.connect("1")
            await store.connect("2")
            await store.connect("2")
            await store.connect("3")
            gone = await store.disconnect("3")
            assert a is not None
            assert gone is not None
            view = await store.view()
            assert view.sockets == {"1": 1, "2": 2}
            assert view.versions["1"] == a.version
            assert view.versions["3"] == gone.version
        finally:
            await closing(store)

    run(body)


def test_a_heartbeat_with_nothing_lost_announces_nothing(factory: Factory) -> None:
    async def body() -> None:
        store = factory()
        try:
            await store.connect("4")
            assert await store.heartbeat() == []
            assert await store.sockets("4") == 1
        finally:
            await closing(store)

    run(body)


# ------------------------------------------------------------------------------ processes
@REDIS_ONLY
def test_a_user_on_two_processes_stays_connected_until_the_last_socket_closes(
    kind: str, factory: Factory
) -> None:

    async def body() -> None:
        a, b = factory("a"), factory("b")
        try:
            came = await a.connect("5")
            assert came is not None
            assert came.connected
            assert await b.connect("5") is None  # already connected on a
            assert await a.sockets("5") == await b.sockets("5") == 2
            assert await a.disconnect("5") is None  # still on b
            assert (await a.view()).sockets == {"5": 1}
            went = await b.disconnect("5")
            assert went is not None
            assert (went.connected, went.version > came.version) == (False, True)
            assert (await a.view()).sockets == {}
        finally:
            await closing(a, b)

    run(body)


@REDIS_ONLY
def test_racing_processes_announce_each_change_exactly_once(kind: str, factory: Factory) -> None:

    async def body() -> None:
        stores = [factory(f"p{i}") for i in range(4)]
        try:
            for _ in range(3):
                came = await asyncio.gather(*(s.connect("6") for s in stores for _ in range(3)))
                assert [c.connected for c in came if c is not None] == [True]
                went = await asyncio.gather(*(s.disconnect("6") for s in stores for _ in range(3)))
                assert [c.connected for c in went if c is not None] == [False]
        finally:
            await closing(*stores)

    run(body)


@REDIS_ONLY
def test_the_view_is_the_union_of_every_process(kind: str, factory: Factory) -> None:

    async def body() -> None:
        a, b = factory("a"), factory("b")
        try:
            await a.connect("1")
            await b.connect("2")
            await b.connect("1")
            for store in (a, b):
                assert (await store.view()).sockets == {"1": 2, "2": 1}
        finally:
            await closing(a, b)

    run(body)


@REDIS_ONLY
def test_a_dead_process_s_sockets_expire_and_one_survivor_announces_them(
    kind: str, factory: Factory
) -> None:

    async def body() -> None:
        fast = {"ttl": 0.5, "heartbeat_interval": 0.1}
        dead, b, c = factory("dead", **fast), factory("b", **fast), factory("c", **fast)
        try:
            assert await dead.connect("9") is not None  # only on the process that dies
            assert await dead.connect("10") is not None
            assert await b.connect("10") is None  # also on a survivor
            changes: list[PresenceChange] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            # ``dead`` stops renewing its hash (SIGKILL); the survivors keep beating.
            while not changes and loop.time() < deadline:
                for store in (b, c):
                    changes += await store.heartbeat()
                await asyncio.sleep(0.05)
            assert [(x.user_id, x.connected) for x in changes] == [("9", False)]
            for store in (b, c):  # announced once: later heartbeats find nothing
                assert await store.heartbeat() == []
            assert (await c.view()).sockets == {"10": 1}
            assert await c.sockets("9") == 0
        finally:
            await closing(dead, b, c)

    run(body)


@REDIS_ONLY
def test_a_process_whose_counts_expired_announces_its_users_again(
    kind: str, factory: Factory
) -> None:
    """A pause longer than the TTL looks like a death; the next heartbeat undoes it."""

    async def body() -> None:
        fast = {"ttl": 0.3, "heartbeat_interval": 0.1}
        paused, other = factory("paused", **fast), factory("other", **fast)
        try:
            assert await paused.connect("11") is not None
            gone: list[PresenceChange] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while not gone and loop.time() < deadline:
                gone = await other.heartbeat()
                await asyncio.sleep(0.05)
            assert [(x.user_id, x.connected) for x in gone] == [("11", False)]
            back = await paused.heartbeat()
            assert [(x.user_id, x.connected) for x in back] == [("11", True)]
            assert back[0].version > gone[0].version
            assert await other.sockets("11") == 1
        finally:
            await closing(paused, other)

    run(body)


# ------------------------------------------------------------------------------ the board
@REDIS_ONLY
def test_the_board_announces_what_the_heartbeat_finds(kind: str, factory: Factory) -> None:

    async def body() -> None:
        fast = {"ttl": 0.5, "heartbeat_interval": 0.1}
        dead, survivor = factory("dead", **fast), factory("survivor", **fast)
        board = PresenceBoard(survivor)
        announced: asyncio.Queue[tuple[dict[str, Any], int]] = asyncio.Queue()

        async def announce(frame: dict[str, Any], version: int) -> None:
            await announced.put((frame, version))

        try:
            await board.connect("12", "Ada")
            assert await dead.connect("13") is not None
            board.start(announce)
            frame, _ = await asyncio.wait_for(announced.get(), 20)
            assert (frame["user_id"], frame["connected"], frame["state"]) == (
                "13",
                False,
                "offline",
            )
            assert await board.connected("12")
        finally:
            await board.stop()
            await closing(dead, survivor)

    run(body)
