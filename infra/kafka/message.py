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
import re
from dataclasses import dataclass
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


# The transcoder writes the timestamp first, as {"_type_": "datetime_iso", "_data_": "..."}.
_TIMESTAMP = re.compile(rb'"timestamp":\s*\{"_type_":\s*"datetime_iso",\s*"_data_":\s*"([^"]+)"')


def encode(notification: Notification) -> EventMessage:
    """The message of one stored event. The stored state is already the payload's JSON, so
    it is embedded as it is, never parsed and re-serialised (the relay's hot path)."""
    aggregate_id = str(notification.originator_id)
    is_ticket = notification.topic.startswith(TICKET_TOPIC_PREFIX)
    stamp = _TIMESTAMP.search(notification.state)
    head = json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "position": notification.id,
            "type": notification.topic,
            "aggregate_id": aggregate_id,
            "ticket_id": aggregate_id if is_ticket else None,
            "version": notification.originator_version,
            "time": stamp.group(1).decode() if stamp else None,
        },
        separators=(",", ":"),
    )
    return EventMessage(
        key=aggregate_id.encode(),
        value=head[:-1].encode() + b',"payload":' + bytes(notification.state) + b"}",
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
