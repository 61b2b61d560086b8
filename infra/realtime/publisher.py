"""``FramePublisher`` over a Channels layer: one group message per delivery, in order.

Two ways (ADR 0044):

- **local** (``hub`` given, ``local=True`` or the in-memory layer): the frames go to the
  sockets of this process only, handed to its ``PushHub`` on the event loop that serves
  them (noted by ``ServerLoop`` on the first ASGI call; before any call no socket can be
  listening in this process, and frames are dropped). The in-memory layer of ``make run``
  is always this; with Redis every server process runs its own push projector and nothing
  goes through Redis.
- **cluster** (the leader with Redis): one ``group_send`` (a Redis ``PUBLISH``) per batch
  to the group every process's hub reads (``hub.HUB_GROUP``), which hands each frame to
  that process's own sockets (ADR 0051). Redis is reachable from anywhere: the publisher
  runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from infra.realtime.hub import HUB_GROUP, PushHub, batches
from projections.push import Delivery

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
FRAME = "push.frame"  # the layer message type; the consumer's handler is ``push_frame``
DRAFT = "push.draft"  # a draft's stream (``push_draft``): not stored, to one agent only
SESSION_ENDED = "push.session_ended"  # a user's sessions ended (``push_session_ended``)
PUBLISH_TIMEOUT = 30.0


class ServerLoop:
    """Notes the event loop that serves ASGI calls (wrap the application with ``bind``)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, app: ASGIApp) -> ASGIApp:
        async def bound(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            await app(scope, receive, send)

        return bound


def layer_message(delivery: Delivery) -> dict[str, Any]:
    return {
        "type": FRAME,
        "g": delivery.group,
        "f": delivery.frame,
        "p": delivery.prev,
        "pt": delivery.family_prev,
        "s": delivery.floor,
    }


class ChannelsFramePublisher:
    def __init__(
        self,
        layer: Any,
        server_loop: ServerLoop | None = None,
        *,
        hub: PushHub | None = None,
        local: bool = False,
    ) -> None:
        """``server_loop``: send on the serving loop (the in-memory layer; ``local`` with
        ``hub``: frames to this process's sockets only); None: a loop of its own, frames to
        every process's hub through the layer. Drafts and session ends always go through the
        layer."""
        self._layer = layer
        self._server_loop = server_loop
        self._hub = hub
        self._local = local and hub is not None
        self._own: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._send(deliveries), loop)
        future.result(PUBLISH_TIMEOUT)

    def send_draft(self, user_id: str, ticket_id: object, frame: dict[str, Any]) -> None:
        """One frame of a draft's stream, to the sockets of the agent who asked for it."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        message = {"type": DRAFT, "f": frame}
        send = self._layer.group_send(draft_group(user_id, ticket_id), message)
        asyncio.run_coroutine_threadsafe(send, loop).result(PUBLISH_TIMEOUT)

    def end_sessions(self, user_id: str) -> None:
        """Close every socket of ``user_id`` (every process: the layer's group), now that
        their sessions have ended (an admin deactivated the account)."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        send = self._layer.group_send(session_group(user_id), {"type": SESSION_ENDED})
        asyncio.run_coroutine_threadsafe(send, loop).result(PUBLISH_TIMEOUT)

    async def _send(self, deliveries: Sequence[Delivery]) -> None:
        messages = [layer_message(d) for d in deliveries]
        if self._local:
            assert self._hub is not None
            self._hub.deliver(messages)
            return
        for batch in batches(messages):
            await self._layer.group_send(HUB_GROUP, batch)

    def _loop(self) -> asyncio.AbstractEventLoop | None:
        if self._server_loop is not None:
            return self._server_loop.loop
        with self._lock:
            if self._own is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="push-publisher", daemon=True
                ).start()
                self._own = loop
            return self._own

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.call_soon_threadsafe(self._own.stop)
                self._own = None


def draft_group(user_id: str, ticket_id: object) -> str:
    """The group of one agent's drafts on one ticket (group names: ASCII, ``.-_`` only)."""
    return f"drafts.{user_id}.{ticket_id}"


def session_group(user_id: str) -> str:
    """The group of every socket one user holds (``end_sessions`` closes them)."""
    return f"session.{user_id}"
