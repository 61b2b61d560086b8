"""The channel layers of the push: the in-memory one of the embedded mode without its
per-message overheads, and Channels' Redis pub/sub layer with local delivery.

Channels' ``InMemoryChannelLayer`` scans every channel and group membership for expired
entries on each ``send``/``receive`` (hundreds of entries with a few hundred sockets, on
every frame), deep-copies each message once per recipient and starts a task per recipient
of a group message. Measured with 200 sockets that made frames queue up for seconds. This
subclass scans at most once a second, delivers group messages in a plain loop and shares
one message between recipients: consumers here never mutate a message (they build new
frames from it). Expiry still works as in Channels: a consumer whose queue holds a message
older than ``expiry`` leaves its groups (and then re-joins them after the push heartbeat
goes silent, see ``docs/realtime.md``). It overrides Channels' private ``_clean_expired``:
see docs/upstream-patches.md (6), pinned by tests/unit/test_upstream_pins.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

CLEAN_EVERY = 1.0  # seconds between expiry scans


class InMemoryPushLayer(InMemoryChannelLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at >= CLEAN_EVERY:
            self._cleaned_at = now
            super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            self.require_valid_channel_name(channel)
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)


class PushPubSubLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    """Channels' Redis pub/sub layer, with one decoding per group message and process: the
    layer queues the same bytes for every member of a group and each receiver decodes them
    again; here the bytes of recent messages map to one decoded message, shared like the
    in-memory layer's (consumers never mutate a message). Push frames no longer need it (one
    hub per process reads them, ADR 0051); typing and presence signals to many sockets do.
    See docs/upstream-patches.md (7), pinned by tests/unit/test_upstream_pins.py.
    """

    DECODED = 1024  # recent group messages kept decoded

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decoded: OrderedDict[bytes, Any] = OrderedDict()

    def deserialize(self, message: Any) -> Any:
        decoded = self._decoded.get(message)
        if decoded is None:
            decoded = super().deserialize(message)
            self._decoded[message] = decoded
            if len(self._decoded) > self.DECODED:
                self._decoded.popitem(last=False)
        return decoded
