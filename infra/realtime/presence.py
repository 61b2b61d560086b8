"""Who of the staff is connected, and what availability they chose (the durable half).

Presence is ephemeral: it is not an event. Sockets are counted by a ``PresenceStore``: the
in-memory one here for the embedded mode (one server process), the Redis one
(``infra/realtime/presence_redis.py``) whenever several processes share a Redis channel
layer. The ``PresenceBoard`` adds what a frame shows besides the sockets: each agent's
name and availability (loaded from the read model, then updated by the push projector's
``availability_changed`` frames). What a client is shown is ``state``: ``offline`` without
a socket anywhere, otherwise the chosen availability.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from infra.realtime.ports import AgentCard, PresenceChange, PresenceStore, PresenceView

log = logging.getLogger(__name__)

DEFAULT_AVAILABILITY = "online"  # connected, but no availability ever chosen

Announce = Callable[[dict[str, Any], int], Awaitable[None]]  # (presence frame, version)


class MemoryPresenceStore:
    """Sockets of one server process: the whole truth when there is only one."""

    heartbeat_interval: float | None = None  # nothing here outlives its process

    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()
        self._versions: dict[str, int] = {}
        self._clock = itertools.count(1)

    def _change(self, user_id: str, connected: bool) -> PresenceChange:
        version = self._versions[user_id] = next(self._clock)
        return PresenceChange(user_id, connected, version)

    async def connect(self, user_id: str) -> PresenceChange | None:
        self._sockets[user_id] += 1
        return self._change(user_id, True) if self._sockets[user_id] == 1 else None

    async def disconnect(self, user_id: str) -> PresenceChange | None:
        if self._sockets[user_id] <= 0:
            self._sockets.pop(user_id, None)
            return None  # never counted (or already gone): nothing to announce
        self._sockets[user_id] -= 1
        if self._sockets[user_id] > 0:
            return None
        del self._sockets[user_id]
        return self._change(user_id, False)

    async def sockets(self, user_id: str) -> int:
        return self._sockets.get(user_id, 0)

    async def view(self) -> PresenceView:
        return PresenceView(dict(self._sockets), dict(self._versions))

    async def heartbeat(self) -> list[PresenceChange]:
        return []

    async def close(self) -> None:
        pass


class PresenceBoard:
    """The presence of the staff as this server process shows it: sockets from the store,
    names and availability from the agents' directory and the push projector."""

    def __init__(self, store: PresenceStore | None = None) -> None:
        self.store: PresenceStore = store if store is not None else MemoryPresenceStore()
        self._availability: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._beat: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ sockets
    async def connect(self, user_id: str, name: str) -> PresenceChange | None:
        """Count a socket; the change if it is the user's first anywhere."""
        self._names.setdefault(user_id, name)
        try:
            return await self.store.connect(user_id)
        except Exception:  # Redis away: the heartbeat announces it once Redis is back
            log.warning("presence store unavailable (connect)", exc_info=True)
            return None

    async def disconnect(self, user_id: str) -> PresenceChange | None:
        """Uncount a socket; the change if it was the user's last anywhere."""
        try:
            return await self.store.disconnect(user_id)
        except Exception:
            log.warning("presence store unavailable (disconnect)", exc_info=True)
            return None

    async def connected(self, user_id: str) -> bool:
        try:
            return await self.store.sockets(user_id) > 0
        except Exception:
            log.warning("presence store unavailable (connected)", exc_info=True)
            return False

    async def view(self) -> PresenceView:
        return await self.store.view()

    def start(self, announce: Announce) -> None:
        """Run the store's heartbeat on the running loop (once), announcing what it finds."""
        interval = self.store.heartbeat_interval
        if interval is None or (self._beat is not None and not self._beat.done()):
            return
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat(announce, interval))

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
            self._beat = None

    async def _heartbeat(self, announce: Announce, interval: float) -> None:
        while True:
            try:
                for change in await self.store.heartbeat():
                    await announce(
                        self.frame(change.user_id, connected=change.connected), change.version
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("presence heartbeat failed; retrying", exc_info=True)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ availability
    def set_availability(self, user_id: str, availability: str) -> None:
        self._availability[user_id] = availability

    def availability(self, user_id: str) -> str:
        return self._availability.get(user_id, DEFAULT_AVAILABILITY)

    def load(self, cards: Iterable[AgentCard]) -> None:
        for card in cards:
            self._availability[card.user_id] = card.availability
            self._names[card.user_id] = card.name

    # ------------------------------------------------------------------ frames
    def frame(self, user_id: str, *, connected: bool) -> dict[str, Any]:
        availability = self.availability(user_id)
        return {
            "type": "presence",
            "user_id": user_id,
            "name": self._names.get(user_id, ""),
            "availability": availability,
            "connected": connected,
            "state": availability if connected else "offline",
        }

    def snapshot(self, view: PresenceView) -> list[dict[str, Any]]:
        users = sorted(set(self._names) | set(view.sockets), key=lambda u: (len(u), u))
        return [self.frame(user, connected=view.sockets.get(user, 0) > 0) for user in users]
