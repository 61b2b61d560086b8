"""What the WebSocket consumer needs from the rest of the system, wired by ``config``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from infra.realtime.stats import FanoutStats
from projections.ports import EventSource
from projections.push import AggregateLog


class AuthenticationFailedError(Exception):
    """A token that cannot open or keep a socket; ``code`` is the API's token error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str  # customer | agent | admin
    name: str
    expires_at: float  # the access token's ``exp`` (Unix time)

    @property
    def staff(self) -> bool:
        return self.role in ("agent", "admin")


@dataclass(frozen=True)
class AgentCard:
    """One agent as the presence snapshot shows it (from the read model)."""

    user_id: str
    name: str
    availability: str


@dataclass(frozen=True)
class RealtimeSettings:
    sync_interval: float = 2.0  # the push projector's heartbeat
    silence_timeout: float = 6.0  # no heartbeat for this long: re-subscribe and catch up
    auth_timeout: float = 10.0  # a socket without a token is closed after this
    reauth_interval: float = 60.0  # the session is checked again this often (logout)
    typing_interval: float = 1.0  # at most one typing signal per ticket per interval
    max_replay: int = 10_000  # positions a queue/notification resume may scan
    max_subscriptions: int = 50


@dataclass(frozen=True)
class RealtimeServices:
    """Synchronous callables (the consumer runs them in worker threads)."""

    authenticate: Callable[[str], Principal]  # raises AuthenticationFailedError
    source: EventSource
    log: AggregateLog
    agents: Callable[[], Sequence[AgentCard]]
    settings: RealtimeSettings
    stats: FanoutStats = field(default_factory=FanoutStats)


@dataclass(frozen=True)
class PresenceChange:
    """A staff user's first socket anywhere opened (``connected``) or their last one closed.

    ``version`` grows with every change of that user: subscribers on several server
    processes receive changes announced by different processes, and drop one that is not
    newer than what they already know.
    """

    user_id: str
    connected: bool
    version: int


@dataclass(frozen=True)
class PresenceView:
    """Sockets per connected staff user across every live server process, and the version
    of each user's last change (what a snapshot is as new as)."""

    sockets: dict[str, int]
    versions: dict[str, int]


class PresenceStore(Protocol):
    """Counts the sockets of each staff user and decides who announces a change.

    ``connect``/``disconnect`` count a socket of *this* process and return the change when it
    was the user's first socket anywhere, or their last one anywhere; exactly one caller,
    in whichever process, gets each change. ``heartbeat`` keeps this process's sockets
    alive and returns the changes nobody announced (a server process died with the only
    sockets of some users); the store needs it every ``heartbeat_interval`` seconds
    (``None``: nothing can expire, no heartbeat needed).
    """

    @property
    def heartbeat_interval(self) -> float | None: ...

    async def connect(self, user_id: str) -> PresenceChange | None: ...

    async def disconnect(self, user_id: str) -> PresenceChange | None: ...

    async def sockets(self, user_id: str) -> int: ...

    async def view(self) -> PresenceView: ...

    async def heartbeat(self) -> list[PresenceChange]: ...

    async def close(self) -> None: ...
