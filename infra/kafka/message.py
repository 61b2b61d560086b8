"""The Kafka message format of a stored event (schema version 1, see docs/events.md).

Key: the aggregate id (a ticket's id for ticket events) as UTF-8, so one ticket's events
land on one partition, in order. Value: a JSON object::

    {"schema_version": 1, "position": 1234, "type": "deskstream.ticket:MessagePosted",
     "aggregate_id": "<uuid>", "ticket_id": "<uuid>" | null, "version": 3,
     "time": "2026-11-26T22:09:00.123456+00:00", "payload": {...}}

``payload`` is the event's stored state exactly as the event store's JSON transcoder wrote it
(so the consumer rebuilds the domain event with the application's own mapper, upcasters
included). Headers repeat ``type`` and ``schema_version`` for tools that route on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

SCHEMA_VERSION = 1
TICKET_TOPIC_PREFIX = "deskstream.ticket:"


class UnsupportedMessageError(ValueError):
    """A message written by a newer relay than this consumer understands."""


@dataclass(frozen=True)
class EventMessage:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _time(payload: dict[str, Any]) -> str | None:
    stamp = payload.get("timestamp")
    if isinstance(stamp, dict):  # the transcoder's {"_type_": "datetime_iso", "_data_": ...}
        stamp = stamp.get("_data_")
    return stamp if isinstance(stamp, str) else None


def encode(notification: Notification) -> EventMessage:
    payload = json.loads(notification.state)
    aggregate_id = str(notification.originator_id)
    is_ticket = notification.topic.startswith(TICKET_TOPIC_PREFIX)
    value = {
        "schema_version": SCHEMA_VERSION,
        "position": notification.id,
        "type": notification.topic,
        "aggregate_id": aggregate_id,
        "ticket_id": aggregate_id if is_ticket else None,
        "version": notification.originator_version,
        "time": _time(payload),
        "payload": payload,
    }
    return EventMessage(
        key=aggregate_id.encode(),
        value=json.dumps(value, separators=(",", ":")).encode(),
        headers=[
            ("type", notification.topic.encode()),
            ("schema_version", str(SCHEMA_VERSION).encode()),
        ],
    )


def decode(value: bytes) -> tuple[int, StoredEvent]:
    """The log position and the stored event a message carries."""
    message = json.loads(value)
    if message.get("schema_version") != SCHEMA_VERSION:
        raise UnsupportedMessageError(
            f"schema_version {message.get('schema_version')!r}; this consumer reads "
            f"{SCHEMA_VERSION}"
        )
    return int(message["position"]), StoredEvent(
        originator_id=UUID(message["aggregate_id"]),
        originator_version=int(message["version"]),
        topic=message["type"],
        state=json.dumps(message["payload"], separators=(",", ":")).encode(),
    )
