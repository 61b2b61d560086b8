"""``InMemoryPushLayer`` (the embedded mode's channel layer) on Channels' own
``InMemoryChannelLayer``: what it changes (scans at most once a second, one shared message
per group send) keeps what Channels' layer does (delivery, capacity, expiry). The test suite
otherwise runs with Redis, so this is the one test of it (docs/upstream-patches.md, 6)."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.exceptions import ChannelFull

from infra.realtime import layers
from infra.realtime.layers import InMemoryPushLayer


def test_a_group_message_reaches_every_member_once_and_is_shared() -> None:
    async def main() -> None:
        layer = InMemoryPushLayer()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("ticket.1", a)
        await layer.group_add("ticket.1", b)
        message = {"type": "push", "position": 1}
        await layer.group_send("ticket.1", message)
        got = [await layer.receive(a), await layer.receive(b)]
        assert got == [message, message]
        assert got[0] is got[1]  # one message, not a copy per recipient
        await layer.send(a, {"type": "direct"})
        assert await layer.receive(a) == {"type": "direct"}

    asyncio.run(main())


def test_a_full_channel_refuses_a_direct_send_and_is_skipped_by_a_group_send() -> None:
    async def main() -> None:
        layer = InMemoryPushLayer(capacity=1)
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", a)
        await layer.group_add("g", b)
        await layer.send(a, {"type": "first"})
        with pytest.raises(ChannelFull):
            await layer.send(a, {"type": "second"})
        await layer.group_send("g", {"type": "group"})  # a is full: b still gets it
        assert await layer.receive(b) == {"type": "group"}
        assert await layer.receive(a) == {"type": "first"}

    asyncio.run(main())


def test_an_expired_message_takes_its_channel_out_of_its_groups_at_the_next_scan() -> None:
    """Within ``CLEAN_EVERY`` (a second) of a scan, nothing is scanned; at the next scan a
    channel with an expired message leaves its groups, as in Channels."""

    async def main() -> None:
        layer = InMemoryPushLayer(expiry=0.05)
        stuck, alive = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", stuck)
        await layer.group_add("g", alive)
        await layer.group_send("g", {"type": "m1"})  # first scan now; nobody reads stuck
        assert await layer.receive(alive) == {"type": "m1"}
        await asyncio.sleep(0.1)  # m1 expired in stuck's queue, before the next scan
        await layer.group_send("g", {"type": "m2"})
        assert set(layer.groups["g"]) == {stuck, alive}  # no scan within CLEAN_EVERY
        assert await layer.receive(alive) == {"type": "m2"}  # alive reads what it gets
        deadline = time.monotonic() + 5 * layers.CLEAN_EVERY
        while stuck in layer.groups["g"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            await layer.group_send("g", {"type": "tick"})
            assert await layer.receive(alive) == {"type": "tick"}
        assert set(layer.groups["g"]) == {alive}

    asyncio.run(main())
