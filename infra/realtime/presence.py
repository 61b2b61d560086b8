"""Who of the staff is connected, and what availability they chose (the durable half).

Presence is ephemeral: it is not an event. This board counts the sockets of each staff user
in this server process and remembers each agent's availability (loaded from the read model,
then updated by the push projector's ``availability_changed`` frames). What a client is
shown is ``state``: ``offline`` without a socket, otherwise the chosen availability.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from infra.realtime.ports import AgentCard

DEFAULT_AVAILABILITY = "online"  # connected, but no availability ever chosen


class PresenceBoard:
    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()
        self._availability: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def connect(self, user_id: str, name: str) -> bool:
        """Count a socket; True if it is the user's first (they just came online)."""
        self._names.setdefault(user_id, name)
        self._sockets[user_id] += 1
        return self._sockets[user_id] == 1

    def disconnect(self, user_id: str) -> bool:
        """Uncount a socket; True if it was the user's last (they just went offline)."""
        if self._sockets[user_id] <= 1:
            self._sockets.pop(user_id, None)
            return True
        self._sockets[user_id] -= 1
        return False

    def connected(self, user_id: str) -> bool:
        return self._sockets[user_id] > 0

    def set_availability(self, user_id: str, availability: str) -> None:
        self._availability[user_id] = availability

    def availability(self, user_id: str) -> str:
        return self._availability.get(user_id, DEFAULT_AVAILABILITY)

    def load(self, cards: Iterable[AgentCard]) -> None:
        for card in cards:
            self._availability[card.user_id] = card.availability
            self._names[card.user_id] = card.name

    def frame(self, user_id: str, *, connected: bool | None = None) -> dict[str, Any]:
        online = self.connected(user_id) if connected is None else connected
        availability = self.availability(user_id)
        return {
            "type": "presence",
            "user_id": user_id,
            "name": self._names.get(user_id, ""),
            "availability": availability,
            "connected": online,
            "state": availability if online else "offline",
        }

    def snapshot(self) -> list[dict[str, Any]]:
        users = sorted(set(self._names) | set(self._sockets), key=lambda u: (len(u), u))
        return [self.frame(user) for user in users]
