"""The event store's mapper: ``eventsourcing``'s, plus metadata beside each event's payload.

A command's events carry metadata (the request id and correlation id of the request that
issued it, ``infra/observability/context.py``): ``stamp`` puts it on the events before they
are appended, and it is stored in the event's JSON state under the reserved key
``_metadata``. ``to_domain_event`` takes it out again before anything sees the event, so
the domain event is exactly what it was without it (its attributes, what an aggregate's
``@event`` method is called with, what upcasters get); ``decode`` returns it beside the
event, for projectors and tasks to log. Events stored before, and events appended outside a
request (automation), have none: ``{}``. docs/events.md#metadata describes the field.

Selected with the event store's ``MAPPER_TOPIC`` (``command_api/application.py:
eventstore_env``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

METADATA_KEY = "_metadata"
NO_METADATA: Mapping[str, str] = {}


def stamp(events: Iterable[Any], metadata: Mapping[str, str]) -> None:
    """Give ``events`` (not yet appended) this metadata; nothing if it is empty."""
    if not metadata:
        return
    for event in events:
        # The events are frozen dataclasses: their state is their ``__dict__``, which the
        # mapper stores as it is.
        event.__dict__[METADATA_KEY] = dict(metadata)


class DeskstreamMapper(Mapper[Any]):
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.decode(stored_event)[0]

    def decode(self, stored_event: StoredEvent) -> tuple[Any, Mapping[str, str]]:
        """The domain event and its metadata."""
        event = super().to_domain_event(stored_event)
        metadata = event.__dict__.pop(METADATA_KEY, None)
        return event, metadata or NO_METADATA


def decoder(mapper: Mapper[Any]) -> Any:
    """``mapper``'s ``decode`` (event and metadata), or one giving no metadata."""
    if isinstance(mapper, DeskstreamMapper):
        return mapper.decode
    to_event = mapper.to_domain_event
    return lambda stored: (to_event(stored), NO_METADATA)
