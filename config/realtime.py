"""Wiring of real time: the ``/ws/`` application, its services, and the push projector.

The consumer (``infra.realtime``) gets what it needs from the other adapters through plain
callables built here: token checks from ``infra.auth``, the event log and the agents'
directory from ``infra.postgres``. The push projector follows the same event source as the
read-model projectors and publishes to the configured channel layer (in-memory in the
embedded mode, Redis when ``DESKSTREAM_REDIS_URL`` is set); presence is counted in the same
place (this process's memory, or Redis across processes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.routing import URLRouter
from django.conf import settings
from django.db import connection
from django.urls import path

from command_api.application import get_application
from infra.auth.tokens import TokenError, authenticate_access
from infra.postgres.aggregate_log import PostgresAggregateLog
from infra.postgres.models import AgentRecord
from infra.realtime.consumer import StreamConsumer
from infra.realtime.ports import (
    AgentCard,
    AuthenticationFailedError,
    PresenceStore,
    Principal,
    RealtimeServices,
    RealtimeSettings,
)
from infra.realtime.presence import MemoryPresenceStore, PresenceBoard
from infra.realtime.presence_redis import RedisPresenceStore
from infra.realtime.publisher import ASGIApp, ChannelsFramePublisher, ServerLoop
from projections import push

log = logging.getLogger(__name__)

server_loop = ServerLoop()


def presence_store() -> PresenceStore:
    """Redis whenever the channel layer is Redis (several server processes may share it),
    else this process's own count (the embedded mode serves from one process)."""
    if not settings.REDIS_URL:
        return MemoryPresenceStore()
    return RedisPresenceStore(
        settings.REDIS_URL,
        prefix=f"{settings.CHANNELS_PREFIX}presence:",
        ttl=settings.PRESENCE_TTL,
        heartbeat_interval=settings.PRESENCE_HEARTBEAT,
    )


presence = PresenceBoard(presence_store())
_services: RealtimeServices | None = None
_lock = threading.Lock()


def realtime_settings() -> RealtimeSettings:
    return RealtimeSettings(
        sync_interval=settings.REALTIME_SYNC_INTERVAL,
        silence_timeout=settings.REALTIME_SILENCE_TIMEOUT,
        auth_timeout=settings.REALTIME_AUTH_TIMEOUT,
        reauth_interval=settings.REALTIME_REAUTH_INTERVAL,
        typing_interval=settings.REALTIME_TYPING_INTERVAL,
        max_replay=settings.REALTIME_MAX_REPLAY,
        max_subscriptions=settings.REALTIME_MAX_SUBSCRIPTIONS,
    )


def authenticate(token: str) -> Principal:
    """The socket's user; runs in a worker thread, so it hands its connection back."""
    try:
        user, claims = authenticate_access(token)
        return Principal(str(user.pk), str(user.role), user.display_name, float(claims["exp"]))
    except TokenError as err:
        raise AuthenticationFailedError(err.code, err.detail) from None
    finally:
        connection.close()


def agents() -> Sequence[AgentCard]:
    try:
        return [
            AgentCard(row.user_id, row.name, row.availability)
            for row in AgentRecord.objects.order_by("name")
        ]
    finally:
        connection.close()


def aggregate_log() -> PostgresAggregateLog:
    app = get_application()
    return PostgresAggregateLog(app.recorder, app.mapper)  # type: ignore[arg-type]


def services() -> RealtimeServices:
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                from config.projectors import event_source

                _services = RealtimeServices(
                    authenticate=authenticate,
                    source=event_source(),
                    log=aggregate_log(),
                    agents=agents,
                    settings=realtime_settings(),
                )
    return _services


def websocket_application() -> ASGIApp:
    """The WebSocket side of ``config.asgi``: one endpoint, ``/ws/``."""
    consumer = StreamConsumer.as_asgi(services=services(), presence=presence)
    return URLRouter([path("ws/", consumer)])  # type: ignore[no-any-return]


def publisher() -> ChannelsFramePublisher:
    layer: Any = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return ChannelsFramePublisher(layer, server_loop)
    return ChannelsFramePublisher(layer)


def follow_push(stop: threading.Event) -> None:
    """The push projector: from the head of the log on, until ``stop`` is set."""
    from config.projectors import event_source

    source = event_source(own=True)  # this process's appends without reading them back
    frames = publisher()
    try:
        store = push.PushStore(frames, aggregate_log(), start=source.head())
        while not stop.is_set():
            try:
                push.follow(
                    source,
                    store,
                    stop,
                    sync_interval=settings.REALTIME_SYNC_INTERVAL,
                    batch_size=settings.PROJECTION_BATCH_SIZE,
                )
            except Exception:  # Redis or PostgreSQL away: the batch was not advanced past
                if stop.is_set():
                    break
                log.warning("push projector failed; retrying in 1 s", exc_info=True)
                stop.wait(1.0)
    finally:
        frames.close()
        source.close()
        connection.close()


def push_thread(stop: threading.Event) -> threading.Thread:
    return threading.Thread(target=follow_push, args=(stop,), name="projector-push", daemon=True)
