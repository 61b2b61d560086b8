"""The push hub: this process's sockets by push group, and the delivery of push frames to them.

The push projector's frames (and its heartbeats and availability frames) do not travel as one
channel-layer message per socket: per event that was a queue put, a task, a ``dispatch`` and
a lock for every socket (~150-220 µs of server CPU per delivered frame, ADR 0051). Instead:

- the publisher hands a *batch* of layer messages to the hub of each server process: directly
  on the serving loop (the in-memory layer of ``make run``, or ``local`` fan-out), or, with an
  elected publisher (ADR 0044), as one Redis message per batch on the group ``push.hub``
  that each process's hub reads once;
- the hub looks up the local members of each message's group and calls each member's
  ``push`` synchronously: a member whose subscription is in step sends the frame at once
  (its text encoded once per event and audience, shared by every socket of it); one that is
  not (a gap to fetch from the log, a replay under way) queues it and handles it in order,
  as before (``infra/realtime/consumer.py``).

Typing, presence signals, drafts and session ends still travel on the channel layer: they
are rare, and addressed to one user or one ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

HUB_GROUP = "push.hub"  # the layer group every process's hub reads (leader fan-out)
BATCH = "push.batch"  # the layer message type: {"type": BATCH, "m": [layer messages]}
BATCH_MAX = 500  # layer messages per Redis message (a batch of the projector may be larger)


class Member(Protocol):
    def push(self, message: dict[str, Any]) -> None:
        """Take one push layer message of a group this member joined; never awaits."""


class PushHub:
    """Push group membership of this process's sockets (one hub per server process)."""

    def __init__(self, *, listen: bool = False) -> None:
        """``listen``: read the batches of an elected publisher from the channel layer."""
        self.listen = listen
        self.members: dict[str, set[Member]] = {}
        self._channel: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    def add(self, group: str, member: Member) -> None:
        self.members.setdefault(group, set()).add(member)

    def discard(self, group: str, member: Member) -> None:
        members = self.members.get(group)
        if members is not None:
            members.discard(member)
            if not members:
                del self.members[group]

    def deliver(self, messages: Sequence[dict[str, Any]]) -> int:
        """Hand each message to the local members of its group, in order; how many got one."""
        handed = 0
        members_of = self.members.get
        for message in messages:
            members = members_of(message["g"])
            if not members:
                continue
            for member in tuple(members):
                try:
                    member.push(message)
                except Exception:  # one socket's bug must not starve the others
                    log.exception("push hub: a member failed to take a frame")
            handed += len(members)
        return handed

    async def start(self, layer: Any) -> None:
        """Listen on the layer (once per process and loop); raises if the layer is away."""
        if not self.listen:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._reader is not None and not self._reader.done():
                return
            self._channel = await layer.new_channel("push-hub.")
            await layer.group_add(HUB_GROUP, self._channel)
            self._reader = asyncio.ensure_future(self._read(layer, self._channel))

    async def rejoin(self, layer: Any) -> None:
        """Join the hub group again (a restarted Redis forgot it); raises if it cannot."""
        if not self.listen:
            return
        if self._reader is None or self._reader.done() or self._channel is None:
            await self.start(layer)
            return
        await layer.group_add(HUB_GROUP, self._channel)

    async def _read(self, layer: Any, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("push hub: channel layer receive failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if message.get("type") == BATCH:
                self.deliver(message["m"])

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None


def batches(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer messages of a batch, as few hub messages as the size limit allows."""
    return [
        {"type": BATCH, "m": list(messages[i : i + BATCH_MAX])}
        for i in range(0, len(messages), BATCH_MAX)
    ]
