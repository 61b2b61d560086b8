"""The ``/ws/`` consumer: authenticate, subscribe with resume, relay typing and presence.

One socket carries any number of subscriptions. Each one is a set of push groups and a
position ``through``: every frame of the subscription up to it has been sent (or was known
to the client). A subscription joins its groups *before* it replays the missed events from
the log, and frames arriving meanwhile wait in the layer's queue (a consumer handles one
message at a time), so after the replay they are sent only if newer: no gap, no duplicate.

Frames lost on the way (a Redis restart, a full queue) are noticed three ways, and each
leads to a catch-up from the log before anything newer is sent: a frame whose ``prev`` the
subscription has not seen; a heartbeat that lists a newer frame for one of its groups, or
whose sequence number jumped; no heartbeat at all for ``silence_timeout`` (then the groups
are joined again, too). The protocol and its close codes are in ``docs/realtime.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs
from uuid import UUID

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from infra.api import parse_json
from infra.observability import metrics
from infra.realtime.hub import PushHub
from infra.realtime.ports import (
    AuthenticationFailedError,
    PresenceChange,
    Principal,
    RealtimeServices,
)
from infra.realtime.presence import PresenceBoard
from infra.realtime.publisher import draft_group, session_group
from projections import push

log = logging.getLogger(__name__)
# The subscription kinds (``_subscribe``); tests/e2e/test_permission_matrix_ws.py declares who
# may subscribe to each, and fails on a kind it does not know.
STREAMS = ("ticket", "queue", "user", "presence", "drafts")
T = TypeVar("T")

CLOSE_UNAUTHORIZED = 4401  # reason: the token error code (token_expired: refresh, reconnect)
CLOSE_UNAVAILABLE = 4503  # the push backend is unreachable: reconnect with backoff, resume
CLOSE_INTERNAL = 1011
TYPING = "push.typing"
PRESENCE_SIGNAL = "push.presence"
PENDING_MAX = 1000  # frames a socket holds back while it catches up; more are dropped (a gap)
OUTBOX_MAX = 5000  # live frames waiting for a client that does not read them: closed (4503)
OUTBOX_HIGH = 256  # a replay waits for the writer above this many queued frames ...
OUTBOX_LOW = 64  # ... until it is down to this many
REPLAY_WINDOW = 2000  # positions of the log a queue/notification replay reads at a time
BATCH_FRAMES = 256  # frames the writer joins into one message for a client that asked for it
BATCH_CHARS = 256 * 1024  # ... and the characters it stops joining after
_SENT = metrics.WS_FRAMES.labels("sent")


@dataclass
class Subscription:
    key: str  # "ticket:<id>", "queue", "user", "presence"
    stream: str
    groups: tuple[str, ...]
    ticket_id: UUID | None = None
    through: int = 0
    family: bool = False  # a staff ticket subscription: check ``family_prev``
    customer: bool = False  # a customer's ticket subscription: public versions (``_shown``)
    heard: int = 0  # the newest position the layer brought live (a copy repeats one)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"sub": self.key, "stream": self.stream}
        if self.ticket_id is not None:
            data["ticket_id"] = str(self.ticket_id)
        return data


class ProtocolError(Exception):
    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


@dataclass
class _SyncState:
    seqs: dict[str, int] = field(default_factory=dict)  # projector run -> last heartbeat seq
    at: float = field(default_factory=time.monotonic)  # when the last heartbeat arrived


class StreamConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """One socket. Push frames reach it from the process's ``PushHub`` (``push``: sent at
    once when its subscription is in step, else queued and handled in order by ``_drain``);
    typing, presence signals, drafts and session ends from the channel layer. Everything it
    sends is queued on its ``outbox`` and written in order by one writer task, so nothing
    that hands it a frame waits for its client (ADR 0051)."""

    def __init__(
        self, *, services: RealtimeServices, presence: PresenceBoard, hub: PushHub
    ) -> None:
        super().__init__()
        self.services = services
        self.cfg = services.settings
        self.board = presence
        self.hub = hub
        self.hub_groups: set[str] = set()
        self.pending: deque[dict[str, Any]] = deque()  # hub messages waiting for ``_drain``
        self.draining = False
        self.drainer: asyncio.Task[None] | None = None
        self.outbox: deque[dict[str, Any]] = deque()  # ASGI messages for the writer
        self.wakeup: asyncio.Future[None] | None = None
        self.room: asyncio.Future[None] | None = None  # a replay waits for the writer
        self.writer: asyncio.Task[None] | None = None
        self.write_failed = False
        self.batches = False  # the client reads JSON arrays of frames (``batch``, ADR 0057)
        self.principal: Principal | None = None
        self.token = ""
        self.subs: dict[str, Subscription] = {}
        self.by_group: dict[str, Subscription] = {}
        self.joined: set[str] = set()
        self.lock = asyncio.Lock()
        self.sync = _SyncState()
        self.typing_sent: dict[tuple[str, bool], float] = {}
        self.viewing_sent: dict[str, float] = {}
        self.opened_at = time.monotonic()
        self.checked_at = time.monotonic()
        self.accepted = False
        self.closing = False
        self.counted_closed = False  # deskstream_websocket_connections counted it closed
        self.counted_presence = False
        self.availability_through = 0  # availability frames come once per publishing process
        self.presence_versions: dict[str, int] = {}  # the newest presence change seen, per user
        self.watchdog: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ ASGI plumbing
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.writer = asyncio.ensure_future(self._write(send))
        try:
            await super().__call__(scope, receive, self._queue)
        except OSError:
            if not self.accepted:
                raise
            await self._cleanup()  # the client went away while a frame was being sent
        except Exception:
            # Before the socket was accepted this is the layer failing (no channel); after,
            # a bug. Either way the client gets a documented close code, not a dead socket.
            code = CLOSE_INTERNAL if self.accepted else CLOSE_UNAVAILABLE
            log.exception("realtime consumer failed (closing with %s)", code)
            if not self.accepted:
                self._out({"type": "websocket.accept"})
            error = "internal_error" if self.accepted else "realtime_unavailable"
            self._out({"type": "websocket.send", "text": json.dumps(_error(error, ""))})
            self._out({"type": "websocket.close", "code": code, "reason": error})
            await self._cleanup()
        finally:
            await self._finish()

    # ------------------------------------------------------------------ writing
    def _out(self, message: dict[str, Any]) -> None:
        """Queue an ASGI message for the client (in order); never waits."""
        if self.write_failed:
            return  # the client went away: its disconnect follows
        self.outbox.append(message)
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _too_slow(self) -> None:
        """The client does not read its live frames: rather than hold ever more of them,
        close it; it reconnects and resumes from the log."""
        self.closing = True
        self.outbox.clear()
        text = json.dumps(_error("realtime_unavailable", "Too slow a reader."))
        self._out({"type": "websocket.send", "text": text})
        self._out({"type": "websocket.close", "code": CLOSE_UNAVAILABLE, "reason": "too_slow"})

    async def _room(self) -> None:
        """Wait while the writer has more than ``OUTBOX_HIGH`` messages to send (a replay
        of thousands of frames is sent as the client reads it, not queued at once)."""
        if len(self.outbox) <= OUTBOX_HIGH or self.write_failed:
            return
        self.room = asyncio.get_running_loop().create_future()
        try:
            await self.room
        finally:
            self.room = None

    async def _queue(self, message: dict[str, Any]) -> None:
        """The ``send`` Channels' consumer methods use: onto the outbox."""
        self._out(message)

    async def _write(self, send: Any) -> None:
        """The socket's writer: sends the outbox in order, waits when it is empty."""
        loop = asyncio.get_running_loop()
        closed = False
        try:
            while True:
                while self.outbox:
                    message = self.outbox.popleft()
                    room = self.room
                    if room is not None and len(self.outbox) <= OUTBOX_LOW and not room.done():
                        room.set_result(None)
                    if closed:
                        continue  # nothing may follow the close frame
                    if self.batches and self.outbox and "text" in message:
                        message = self._joined(message)
                    await send(message)
                    closed = message["type"] == "websocket.close"
                self.wakeup = loop.create_future()
                await self.wakeup
                self.wakeup = None
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.write_failed = True
            self.outbox.clear()
            if self.room is not None and not self.room.done():
                self.room.set_result(None)
            if not isinstance(err, OSError):
                log.exception("realtime writer failed")
            await self._cleanup()  # the client went away while a frame was being sent

    def _joined(self, first: dict[str, Any]) -> dict[str, Any]:
        """``first`` and the text frames queued right behind it as one JSON array (ADR
        0057): frames that pile up while the writer waits for its turn on the loop go out as
        one WebSocket message, one send and one parse instead of one each. Order is kept;
        anything else in the outbox (a close) ends the array."""
        outbox = self.outbox
        texts = [first["text"]]
        size = len(texts[0])
        while outbox and len(texts) < BATCH_FRAMES and size < BATCH_CHARS:
            following = outbox[0]
            text = following.get("text")
            if text is None or following["type"] != "websocket.send":
                break
            outbox.popleft()
            texts.append(text)
            size += len(text)
        room = self.room
        if room is not None and len(outbox) <= OUTBOX_LOW and not room.done():
            room.set_result(None)
        if len(texts) == 1:
            return first
        return {"type": "websocket.send", "text": "[" + ",".join(texts) + "]"}

    async def _finish(self) -> None:
        """The consumer is done: let the writer send what is queued (briefly), then stop
        the writer and the drain."""
        if self.drainer is not None:
            self.drainer.cancel()
        writer = self.writer
        if writer is None:
            return
        deadline = time.monotonic() + 2.0
        while self.outbox and not writer.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        writer.cancel()
        with contextlib.suppress(BaseException):
            await writer

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch closes stale Django connections on every message (a hop to
        # the sync thread); this consumer uses the ORM only inside its worker-thread calls.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        await self.accept()
        self.accepted = True
        metrics.WS_CONNECTIONS.inc()
        self.watchdog = asyncio.ensure_future(self._watch())
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.batches = (query.get("batch") or [""])[0] in ("1", "true")
        token = (query.get("token") or [""])[0]
        if token:
            await self._authenticate(token)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self._cleanup()
        raise StopConsumer()

    async def _cleanup(self) -> None:
        if self.accepted and not self.counted_closed:
            self.counted_closed = True
            metrics.WS_CONNECTIONS.dec()
        self.closing = True
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        for group in list(self.hub_groups):
            self.hub.discard(group, self)
        self.hub_groups.clear()
        self.pending.clear()
        layer: Any = getattr(self, "channel_layer", None)
        for group in list(self.joined) if layer is not None else []:
            with contextlib.suppress(Exception):
                await layer.group_discard(group, self.channel_name)
        self.joined.clear()
        if self.counted_presence and self.principal is not None:
            self.counted_presence = False
            change = await self.board.disconnect(self.principal.user_id)
            if change is not None:
                await self._signal_presence(change)

    async def send_json(self, content: Any, close: bool = False) -> None:
        metrics.WS_FRAMES.labels("sent").inc()
        await super().send_json(content, close)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        metrics.WS_FRAMES.labels("received").inc()
        if self.closing:
            return
        try:
            content = parse_json(text_data or "")  # the API's reading: bounded nesting
        except ValueError:
            await self.send_json(_error("invalid", "Frames are JSON objects."))
            return
        if not isinstance(content, dict):
            await self.send_json(_error("invalid", "Frames are JSON objects."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        ref = content.get("ref")
        if kind == "auth":
            token = content.get("token")
            if not isinstance(token, str) or not token:
                await self._refuse("not_authenticated", "Send {type: auth, token: <access>}.")
                return
            if content.get("batch") is True:
                self.batches = True
            await self._authenticate(token)
            return
        if self.principal is None:
            await self._refuse(
                "not_authenticated", "Authenticate first (?token= or an auth frame)."
            )
            return
        if time.time() >= self.principal.expires_at:
            await self._refuse("token_expired", "The access token has expired.")
            return
        try:
            if kind == "subscribe":
                await self._subscribe(content)
            elif kind == "unsubscribe":
                await self._unsubscribe(content)
            elif kind == "typing":
                await self._typing(content)
            elif kind == "viewing":
                await self._viewing(content)
            elif kind == "ping":
                await self.send_json({"type": "pong", **_ref(ref)})
            else:
                raise ProtocolError("invalid", f"Unknown frame type {kind!r}.")
        except ProtocolError as err:
            await self.send_json({**_error(err.code, err.detail), **err.extra, **_ref(ref)})

    # ------------------------------------------------------------------ authentication
    async def _authenticate(self, token: str) -> bool:
        try:
            principal = await self._run(self.services.authenticate, token)
        except AuthenticationFailedError as err:
            await self._refuse(err.code, err.detail)
            return False
        if self.principal is not None and principal.user_id != self.principal.user_id:
            await self._refuse("token_invalid", "A socket stays with the user who opened it.")
            return False
        first = self.principal is None
        self.principal, self.token = principal, token
        self.checked_at = time.monotonic()
        if not first:
            await self.send_json({"type": "authenticated", "expires_at": principal.expires_at})
            return True
        try:
            await self.hub.start(self.channel_layer)
            await self._join(session_group(principal.user_id))
            if principal.staff:
                await self._join(push.PRESENCE)  # presence signals of the other sockets
        except Exception:
            await self._unavailable()
            return False
        self._hub_join(push.SYNC)
        if principal.staff:
            self._hub_join(push.PRESENCE)  # availability frames of the push projector
        self.sync.at = time.monotonic()
        head = await self._run(self.services.source.head)
        if principal.staff:
            self.counted_presence = True
            self.board.start(publish_presence)
            change = await self.board.connect(principal.user_id, principal.name)
            if change is not None:
                await self._signal_presence(change)
        await self.send_json(
            {
                "type": "ready",
                "user_id": principal.user_id,
                "role": principal.role,
                "expires_at": principal.expires_at,
                "position": head,
            }
        )
        return True

    async def _refuse(self, code: str, detail: str) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send_json(_error(code, detail))
            await self.close(CLOSE_UNAUTHORIZED, code)

    async def _unavailable(self) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send_json(
                _error("realtime_unavailable", "Reconnect with backoff and resume.")
            )
            await self.close(CLOSE_UNAVAILABLE, "realtime_unavailable")

    # ------------------------------------------------------------------ subscriptions
    async def _subscribe(self, content: dict[str, Any]) -> None:
        assert self.principal is not None
        stream = content.get("stream")
        after_position = _non_negative(content, "after_position")
        after_version = _non_negative(content, "after_version")
        viewer = push.Viewer(self.principal.user_id, self.principal.staff)
        ticket_id: UUID | None = None
        if stream == "ticket":
            ticket_id = _uuid(content.get("ticket_id"))
            owner = await self._run(push.ticket_customer, self.services.log, ticket_id)
            if owner is None and viewer.staff:
                raise ProtocolError("not_found", "No such ticket.", sub=f"ticket:{ticket_id}")
            if owner is None or (not viewer.staff and owner != viewer.user_id):
                raise ProtocolError(
                    "forbidden", "You may not read this ticket.", sub=f"ticket:{ticket_id}"
                )
            sub = Subscription(
                f"ticket:{ticket_id}",
                stream,
                push.ticket_groups(viewer, ticket_id),
                ticket_id,
                family=viewer.staff,
                customer=not viewer.staff,
            )
        elif stream == "queue":
            if not viewer.staff:
                raise ProtocolError("forbidden", "The queue is for agents and admins.", sub="queue")
            sub = Subscription("queue", stream, (push.QUEUE,))
        elif stream == "user":
            asked = content.get("user_id")
            if asked is not None and str(asked) != viewer.user_id:
                raise ProtocolError("forbidden", "Only your own notifications.", sub="user")
            sub = Subscription("user", stream, (push.user_group(viewer.user_id),))
        elif stream == "presence":
            if not viewer.staff:
                raise ProtocolError("forbidden", "Presence is for agents and admins.")
            sub = Subscription("presence", stream, ())
        elif stream == "drafts":
            # The drafts this user asks for on a ticket: frames go to the asker's group only.
            ticket_id = _uuid(content.get("ticket_id"))
            key = f"drafts:{ticket_id}"
            if not viewer.staff:
                raise ProtocolError("forbidden", "Drafts are for agents and admins.", sub=key)
            owner = await self._run(push.ticket_customer, self.services.log, ticket_id)
            if owner is None:
                raise ProtocolError("not_found", "No such ticket.", sub=key)
            sub = Subscription(key, stream, (draft_group(viewer.user_id, ticket_id),), ticket_id)
        else:
            raise ProtocolError("invalid", f"stream is one of {', '.join(STREAMS)}.")
        if stream == "drafts" and after_position is not None:
            raise ProtocolError("invalid", "Draft streams are live only.", sub=sub.key)
        if after_version is not None and stream != "ticket":
            raise ProtocolError("invalid", "after_version is for ticket streams.", sub=sub.key)
        if sub.key not in self.subs and len(self.subs) >= self.cfg.max_subscriptions:
            raise ProtocolError("too_many_subscriptions", "Unsubscribe from something first.")

        async with self.lock:
            await self._drop(sub.key)
            try:
                for group in _layer_groups(sub):
                    await self._join(group)
            except Exception:
                await self._unavailable()
                return
            self.subs[sub.key] = sub
            for group in sub.groups:
                self.by_group[group] = sub
            for group in _hub_groups(sub):
                self._hub_join(group)
            if stream == "presence":
                await self._send_presence_snapshot()
                await self.send_json({"type": "subscribed", **sub.payload()})
                return
            if stream == "drafts":
                await self.send_json({"type": "subscribed", **sub.payload()})
                return
            if after_position is None and after_version is None:
                sub.through = await self._run(self.services.source.head)
                replayed = 0
            else:
                sub.through = after_position or 0
                replayed = await self._catch_up(sub, after_version=after_version)
            if sub.key in self.subs:
                await self.send_json(
                    {
                        "type": "subscribed",
                        **sub.payload(),
                        "position": sub.through,
                        "replayed": replayed,
                    }
                )

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        key = content.get("sub")
        if not isinstance(key, str) or key not in self.subs:
            raise ProtocolError("invalid", "No such subscription.", sub=key)
        async with self.lock:
            await self._drop(key)
        await self.send_json({"type": "unsubscribed", "sub": key})

    async def _drop(self, key: str) -> None:
        sub = self.subs.pop(key, None)
        if sub is None:
            return
        for group in sub.groups:
            self.by_group.pop(group, None)
            if group in self.hub_groups and group not in (push.SYNC, push.PRESENCE):
                self.hub_groups.discard(group)
                self.hub.discard(group, self)
            if group in self.joined and group not in (push.SYNC, push.PRESENCE):
                self.joined.discard(group)
                with contextlib.suppress(Exception):
                    await self.channel_layer.group_discard(group, self.channel_name)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)

    def _hub_join(self, group: str) -> None:
        self.hub.add(group, self)
        self.hub_groups.add(group)

    async def _catch_up(self, sub: Subscription, *, after_version: int | None = None) -> int:
        """Send what the log has for ``sub`` after ``through`` (lock held). Returns the count."""
        if sub.stream == "presence":
            await self._send_presence_snapshot()
            return 0
        if sub.stream == "drafts":
            return 0  # live only: a missed draft is fetched over HTTP
        services = self.services
        try:
            if sub.stream == "ticket":
                assert sub.ticket_id is not None
                replay = await self._run(
                    push.replay_ticket,
                    services.source,
                    services.log,
                    sub.ticket_id,
                    sub.groups,
                    after_position=sub.through,
                    after_version=after_version or 0,
                    public=sub.customer,  # a customer resumes from a public version
                )
            else:
                return await self._catch_up_log(sub)
        except push.ReplayTooLongError as err:
            await self._drop(sub.key)
            await self.send_json(
                {
                    **_error(
                        "resume_unavailable",
                        "Too much was missed to replay: fetch the current state over HTTP, "
                        "then subscribe again with its position.",
                    ),
                    "sub": sub.key,
                    "position": err.head,
                }
            )
            return 0
        sent = 0
        for delivery in replay.deliveries:
            if delivery.frame["position"] > sub.through:
                await self._send_event(sub, delivery.frame)
                sent += 1
        sub.through = max(sub.through, replay.head)
        return sent

    async def _catch_up_log(self, sub: Subscription) -> int:
        """A queue or notification replay, streamed: up to the log's head as it is now, in
        windows of ``REPLAY_WINDOW`` positions, each sent before the next is read (the first
        frames of a long replay come at once; no replay is held in memory whole)."""
        head = await self._run(self.services.source.head)
        sent = 0
        while sub.through < head:
            replay = await self._run(
                push.replay_log,
                self.services.source,
                self.services.log,
                sub.groups,
                after_position=sub.through,
                max_span=self.cfg.max_replay,
                head=head,
                scan=REPLAY_WINDOW,
            )
            for delivery in replay.deliveries:
                if delivery.frame["position"] > sub.through:
                    await self._send_event(sub, delivery.frame)
                    sent += 1
            sub.through = max(sub.through, replay.head)  # replay_log always gets further
        return sent

    async def _send_event(self, sub: Subscription, frame: dict[str, Any]) -> None:
        await self._room()
        sub.through = frame["position"]
        self.services.stats.delivered += 1
        _SENT.inc()  # send_json's count, for the text sent as is
        self._out(_encoded_event(sub, frame))

    # ------------------------------------------------------------------ push frames
    def push(self, message: dict[str, Any]) -> None:
        """A push layer message from the hub (on the serving loop; never waits). A frame
        its subscription is in step for is sent at once; anything else (a heartbeat, an
        availability frame, a frame after a gap or during a replay, a copy) is queued and
        handled in order by ``push_frame``, as are the frames behind it."""
        if self.closing:
            return
        group = message["g"]
        sub = None if self.draining or self.lock.locked() else self.by_group.get(group)
        if sub is None:
            if group in self.hub_groups:
                self._defer(message)
            return
        frame = message["f"]
        position = frame["position"]
        prev = message.get("pt") if sub.family else message.get("p")
        if (
            position <= sub.heard
            or position <= sub.through
            or (prev is not None and prev > sub.through)
            or (prev is None and (message.get("s") or 0) > sub.through)
        ):
            self._defer(message)
            return
        if len(self.outbox) >= OUTBOX_MAX:
            self._too_slow()
            return
        sub.heard = sub.through = position
        self.services.stats.delivered += 1
        _SENT.inc()
        self._out(_encoded_event(sub, frame))

    def _defer(self, message: dict[str, Any]) -> None:
        if len(self.pending) >= PENDING_MAX:
            return  # dropped, like a full channel: its gap is found and fetched from the log
        self.pending.append(message)
        if not self.draining:
            self.draining = True
            self.drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending and not self.closing:
                await self.push_frame(self.pending.popleft())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realtime consumer failed on a push frame (closing with 1011)")
            if not self.closing:
                self.closing = True
                self._out(
                    {"type": "websocket.send", "text": json.dumps(_error("internal_error", ""))}
                )
                self._out(
                    {"type": "websocket.close", "code": CLOSE_INTERNAL, "reason": "internal_error"}
                )
        finally:
            if self.closing:
                self.pending.clear()
            self.draining = False

    async def push_frame(self, message: dict[str, Any]) -> None:
        group = message["g"]
        frame = message["f"]
        if group == push.SYNC:
            await self._on_sync(frame)
            return
        if group == push.PRESENCE:
            await self._on_availability(frame)
            return
        if self.closing:
            return
        async with self.lock:
            sub = self.by_group.get(group)
            if sub is None:
                return
            position = frame["position"]
            if position <= sub.heard:
                self.services.stats.duplicates += 1  # a second copy of a frame: dropped
                return
            sub.heard = position
            if position <= sub.through:
                return  # sent already, by the replay that followed the join
            prev = message.get("pt") if sub.family else message.get("p")
            # No ``prev``: nothing of the group since the publisher's floor; below it, a
            # publisher before this one may have left a frame unpublished (ADR 0044).
            floor = message.get("s") if prev is None else None
            if (prev is not None and prev > sub.through) or (
                floor is not None and floor > sub.through
            ):
                await self._catch_up(sub)  # a frame was lost: the log has it, and this one
                return
            await self._send_event(sub, frame)

    async def _on_sync(self, frame: dict[str, Any]) -> None:
        self.sync.at = time.monotonic()
        epoch, seq = frame["epoch"], frame["seq"]
        last = self.sync.seqs.get(epoch)
        self.sync.seqs[epoch] = seq
        lost = (last is not None and seq != last + 1) or bool(frame.get("overflow"))
        newest: dict[str, int] = frame.get("groups") or {}
        if self.closing:
            return
        async with self.lock:
            for sub in list(self.subs.values()):
                if sub.stream == "presence":
                    if lost:
                        await self._send_presence_snapshot()
                    continue
                if sub.stream == "drafts":
                    continue
                missed = any(newest.get(g, 0) > sub.through for g in sub.groups)
                # A publisher that took over from another covers the log after its floor.
                missed = missed or int(frame.get("floor") or 0) > sub.through
                if lost or missed:
                    await self._catch_up(sub)
                else:
                    sub.through = max(sub.through, int(frame["position"]))

    async def _on_availability(self, frame: dict[str, Any]) -> None:
        if frame["position"] <= self.availability_through:
            return
        self.availability_through = frame["position"]
        user = frame["user_id"]
        self.board.set_availability(user, frame["availability"])
        if "presence" in self.subs and not self.closing:
            shown = self.board.frame(user, connected=await self.board.connected(user))
            await self.send_json({**shown, "position": frame["position"]})

    async def push_typing(self, message: dict[str, Any]) -> None:
        if message.get("sender") == self.channel_name or self.closing:
            return
        sub = self.by_group.get(message["g"])
        if sub is not None:
            await self.send_json({**message["f"], "sub": sub.key})

    async def push_draft(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        frame = message["f"]
        sub = self.subs.get(f"drafts:{frame.get('ticket_id')}")
        if sub is not None:
            await self.send_json({"type": "draft", "sub": sub.key, **frame})

    async def push_session_ended(self, message: dict[str, Any]) -> None:
        """The user's sessions ended (deactivated): the socket closes at once, not at its
        next session re-check."""
        await self._refuse("session_revoked", "This session has been signed out.")

    async def push_presence(self, message: dict[str, Any]) -> None:
        if message.get("sender") == self.channel_name or self.closing:
            return
        frame = message["f"]
        if not self._newer_presence(frame["user_id"], message.get("v")):
            return  # announced by another process before a change this socket already has
        if "presence" in self.subs:
            await self.send_json(frame)

    def _newer_presence(self, user_id: str, version: int | None) -> bool:
        if version is None:
            return True
        if version <= self.presence_versions.get(user_id, 0):
            return False
        self.presence_versions[user_id] = version
        return True

    # ------------------------------------------------------------------ ephemeral signals
    async def _typing(self, content: dict[str, Any]) -> None:
        assert self.principal is not None
        ticket_id = _uuid(content.get("ticket_id"))
        sub = self.subs.get(f"ticket:{ticket_id}")
        if sub is None:
            raise ProtocolError("not_subscribed", "Subscribe to the ticket before typing on it.")
        internal = content.get("internal") is True
        if internal and not self.principal.staff:
            raise ProtocolError("forbidden", "Only agents and admins write internal notes.")
        now = time.monotonic()
        if now - self.typing_sent.get((str(ticket_id), internal), -1e9) < self.cfg.typing_interval:
            return  # rate limit: typing is a hint, dropping repeats loses nothing
        self.typing_sent[(str(ticket_id), internal)] = now
        group = push.ticket_staff_group(ticket_id) if internal else push.ticket_group(ticket_id)
        frame = {
            "type": "typing",
            "ticket_id": str(ticket_id),
            "user_id": self.principal.user_id,
            "role": self.principal.role,
            "name": self.principal.name,
            "internal": internal,
        }
        try:
            await self.channel_layer.group_send(
                group, {"type": TYPING, "g": group, "f": frame, "sender": self.channel_name}
            )
        except Exception:
            log.warning("typing signal not relayed (channel layer unavailable)", exc_info=True)

    async def _viewing(self, content: dict[str, Any]) -> None:
        """ "Ada is viewing": a staff member has the ticket open. Relayed, like typing, through
        the channel layer (Redis across processes) to the ticket's other staff subscribers
        only; never stored. Clients repeat it while the page is open (``VIEWING_REPEAT``)."""
        assert self.principal is not None
        if not self.principal.staff:
            raise ProtocolError("forbidden", "Only agents and admins signal that they view.")
        ticket_id = _uuid(content.get("ticket_id"))
        if self.subs.get(f"ticket:{ticket_id}") is None:
            raise ProtocolError("not_subscribed", "Subscribe to the ticket before viewing it.")
        now = time.monotonic()
        if now - self.viewing_sent.get(str(ticket_id), -1e9) < self.cfg.typing_interval:
            return  # rate limit, as for typing
        self.viewing_sent[str(ticket_id)] = now
        group = push.ticket_staff_group(ticket_id)
        frame = {
            "type": "viewing",
            "ticket_id": str(ticket_id),
            "user_id": self.principal.user_id,
            "name": self.principal.name,
        }
        try:  # the typing relay's handler (push_typing) forwards any such frame
            await self.channel_layer.group_send(
                group, {"type": TYPING, "g": group, "f": frame, "sender": self.channel_name}
            )
        except Exception:
            log.warning("viewing signal not relayed (channel layer unavailable)", exc_info=True)

    async def _signal_presence(self, change: PresenceChange) -> None:
        """Announce a change this socket made (the store chose it as the one announcer)."""
        frame = self.board.frame(change.user_id, connected=change.connected)
        fresh = self._newer_presence(change.user_id, change.version)
        if fresh and "presence" in self.subs and not self.closing:
            await self.send_json(frame)
        try:
            await self.channel_layer.group_send(
                push.PRESENCE,
                {
                    "type": PRESENCE_SIGNAL,
                    "f": frame,
                    "v": change.version,
                    "sender": self.channel_name,
                },
            )
        except Exception:
            log.warning("presence not relayed (channel layer unavailable)", exc_info=True)

    async def _send_presence_snapshot(self) -> None:
        cards = await self._run(self.services.agents)
        self.board.load(cards)
        try:
            view = await self.board.view()
        except Exception:  # Redis away: the silence recovery sends the snapshot again
            log.warning("presence snapshot unavailable", exc_info=True)
            return
        for user, version in view.versions.items():
            if version > self.presence_versions.get(user, 0):
                self.presence_versions[user] = version
        agents = self.board.snapshot(view)
        await self.send_json({"type": "presence_snapshot", "agents": agents})

    # ------------------------------------------------------------------ timers
    async def _watch(self) -> None:
        """Auth deadline, token expiry, session re-check, and the heartbeat watchdog."""
        cfg = self.cfg
        tick = max(0.05, min(1.0, cfg.silence_timeout / 4))
        try:
            while not self.closing:
                principal = self.principal
                wait = tick
                if principal is not None:
                    wait = max(0.0, min(tick, principal.expires_at - time.time()))
                await asyncio.sleep(wait)
                if self.closing:
                    return
                now = time.monotonic()
                if principal is None:
                    if now - self.opened_at > cfg.auth_timeout:
                        await self._refuse("not_authenticated", "No token was sent in time.")
                    continue
                if time.time() >= principal.expires_at:
                    await self._refuse("token_expired", "The access token has expired.")
                    return
                if now - self.checked_at > cfg.reauth_interval:
                    self.checked_at = now
                    try:
                        await self._run(self.services.authenticate, self.token)
                    except AuthenticationFailedError as err:
                        await self._refuse(err.code, err.detail)
                        return
                if now - self.sync.at > cfg.silence_timeout:
                    self.sync.at = now
                    await self._recover()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realtime watchdog failed")
            await self._unavailable()

    async def _recover(self) -> None:
        """No heartbeat for too long: join the groups again (a restarted Redis forgot them)
        and catch every subscription up from the log."""
        log.info("no push heartbeat for %.1f s: re-subscribing", self.cfg.silence_timeout)
        async with self.lock:
            try:
                await self.hub.rejoin(self.channel_layer)
                for group in list(self.joined):
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                await self._unavailable()
                return
            for sub in list(self.subs.values()):
                await self._catch_up(sub)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)


async def publish_presence(frame: dict[str, Any], version: int) -> None:
    """Announce a change found by the presence heartbeat (to every socket, any process)."""
    layer: Any = get_channel_layer()
    await layer.group_send(
        push.PRESENCE, {"type": PRESENCE_SIGNAL, "f": frame, "v": version, "sender": ""}
    )


def _hub_groups(sub: Subscription) -> tuple[str, ...]:
    """The groups whose push frames the subscription gets from the hub."""
    return sub.groups if sub.stream in ("ticket", "queue", "user") else ()


def _layer_groups(sub: Subscription) -> tuple[str, ...]:
    """The groups the subscription joins on the channel layer: a ticket's for typing, a
    drafts stream's for its frames (push frames come from the hub)."""
    return sub.groups if sub.stream in ("ticket", "drafts") else ()


# The ASGI message of recent live frames per subscription key: a hub message is one dict
# shared by every socket of the process, and the sockets of one stream (200 agents on the
# queue) send the same text, encoded once per event and audience instead of once per socket.
_ENCODED: OrderedDict[tuple[int, str, bool], tuple[dict[str, Any], dict[str, Any]]] = OrderedDict()
ENCODED_MAX = 4096


def _encoded_event(sub: Subscription, frame: dict[str, Any]) -> dict[str, Any]:
    cache_key = (id(frame), sub.key, sub.customer)
    cached = _ENCODED.get(cache_key)
    if cached is not None and cached[0] is frame:  # the same object, not a reused id
        return cached[1]
    shown = _shown(frame, customer=sub.customer)
    text = json.dumps({"type": "event", "sub": sub.key, "stream": sub.stream, **shown})
    message = {"type": "websocket.send", "text": text}
    _ENCODED[cache_key] = (frame, message)
    if len(_ENCODED) > ENCODED_MAX:
        _ENCODED.popitem(last=False)
    return message


def _shown(frame: dict[str, Any], *, customer: bool) -> dict[str, Any]:
    """A ticket frame as its reader gets it: a customer's ``version`` is the ticket's public
    version (``push.ticket_deliveries``), so staff-only events leave no gap in it; staff
    keep the real one. Frames of other streams carry no ``public_version``."""
    if "public_version" not in frame:
        return frame
    shown = dict(frame)
    public_version = shown.pop("public_version")
    if customer:
        shown["version"] = public_version
    return shown


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail}


def _ref(ref: Any) -> dict[str, Any]:
    return {"ref": ref} if isinstance(ref, str | int) else {}


def _uuid(value: Any) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise ProtocolError("invalid", "ticket_id must be a ticket id (UUID).") from None


def _non_negative(content: dict[str, Any], name: str) -> int | None:
    value = content.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("invalid", f"{name} must be a non-negative integer.")
    return value
