"""The push hub (ADR 0051): each process's sockets by push group, one pass per batch.

The hub's delivery to real sockets (fast path, held-back frames, gaps, replays) is covered
end to end by tests/e2e/test_realtime.py and tests/e2e/test_realtime_fanout.py; here, what
the hub itself promises: order, membership, isolation of a failing member, and one Redis
message per batch read once per process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from infra.realtime import hub as hub_module
from infra.realtime.hub import PushHub, batches
from infra.realtime.layers import PushPubSubLayer
from infra.realtime.publisher import ChannelsFramePublisher
from projections.push import Delivery
from tests.support.redis import redis_url


class Member:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def push(self, message: dict[str, Any]) -> None:
        self.got.append(message)


class Broken:
    def push(self, message: dict[str, Any]) -> None:
        raise RuntimeError("a bug in one socket")


def frame(group: str, position: int) -> dict[str, Any]:
    return {"type": "push.frame", "g": group, "f": {"position": position}}


def test_each_member_gets_the_messages_of_its_groups_in_order_and_one_shared_object() -> None:
    hub = PushHub()
    a, b, c = Member(), Member(), Member()
    hub.add("queue", a)
    hub.add("queue", b)
    hub.add("ticket.1", b)
    hub.add("ticket.1", c)
    messages = [frame("queue", 1), frame("ticket.1", 2), frame("user.9", 3), frame("queue", 4)]
    assert hub.deliver(messages) == 6
    assert [m["f"]["position"] for m in a.got] == [1, 4]
    assert [m["f"]["position"] for m in b.got] == [1, 2, 4]
    assert [m["f"]["position"] for m in c.got] == [2]
    assert a.got[0] is b.got[0]  # one message for every socket, not a copy each


def test_a_member_that_left_gets_nothing_and_an_empty_group_is_forgotten() -> None:
    hub = PushHub()
    a, b = Member(), Member()
    hub.add("queue", a)
    hub.add("queue", b)
    hub.discard("queue", a)
    hub.deliver([frame("queue", 1)])
    assert a.got == []
    assert len(b.got) == 1
    hub.discard("queue", b)
    hub.discard("queue", b)  # twice: nothing happens
    assert "queue" not in hub.members


def test_a_failing_member_does_not_keep_the_frame_from_the_others() -> None:
    hub = PushHub()
    good = Member()
    hub.add("queue", Broken())
    hub.add("queue", good)
    hub.deliver([frame("queue", 1), frame("queue", 2)])
    assert [m["f"]["position"] for m in good.got] == [1, 2]


def test_a_large_batch_is_cut_into_hub_messages_in_order() -> None:
    messages = [frame("queue", p) for p in range(1, 2 * hub_module.BATCH_MAX + 2)]
    cut = batches(messages)
    assert [len(b["m"]) for b in cut] == [hub_module.BATCH_MAX, hub_module.BATCH_MAX, 1]
    assert [m for b in cut for m in b["m"]] == messages
    assert {b["type"] for b in cut} == {hub_module.BATCH}
    assert batches([]) == []


def test_a_published_batch_reaches_each_process_hub_once_through_redis_in_order() -> None:
    """Two hubs on two layers (two server processes) and the publisher's own layer: one
    Redis message per batch, every hub hands each frame to its own members, in order."""
    url = redis_url()
    prefix = f"deskstream.test.hub.{uuid.uuid4().hex[:8]}."

    async def main() -> None:
        layers = [PushPubSubLayer(hosts=[url], prefix=prefix) for _ in range(2)]
        hubs = [PushHub(listen=True) for _ in layers]
        members = [Member(), Member()]
        for hub, layer, member in zip(hubs, layers, members, strict=True):
            await hub.start(layer)
            await hub.start(layer)  # idempotent: one reader, one subscription
            hub.add("queue", member)
        publisher_layer = PushPubSubLayer(hosts=[url], prefix=prefix)
        publisher = ChannelsFramePublisher(publisher_layer)
        try:
            deliveries = [
                Delivery("queue", {"position": p}, prev=p - 1 if p > 1 else None)
                for p in range(1, 8)
            ]
            await asyncio.get_running_loop().run_in_executor(None, publisher.publish, deliveries)
            for member in members:
                for _ in range(100):
                    if len(member.got) >= 7:
                        break
                    await asyncio.sleep(0.05)
                assert [m["f"]["position"] for m in member.got] == list(range(1, 8))
                assert [m["p"] for m in member.got] == [None, 1, 2, 3, 4, 5, 6]
            await hubs[0].rejoin(layers[0])  # after a Redis restart: the same one reader
            await asyncio.get_running_loop().run_in_executor(
                None, publisher.publish, [Delivery("queue", {"position": 8}, prev=7)]
            )
            await asyncio.sleep(0.5)
            for member in members:
                assert [m["f"]["position"] for m in member.got] == list(range(1, 9))
        finally:
            publisher.close()
            for hub in hubs:
                await hub.stop()
            for layer in [*layers, publisher_layer]:
                await layer.flush()

    asyncio.run(main())
