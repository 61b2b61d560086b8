"""What the WebSocket consumer needs from the rest of the system, wired by ``config``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
