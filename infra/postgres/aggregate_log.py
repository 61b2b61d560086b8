"""One aggregate's stored events with their notification-log positions (``AggregateLog``).

The library's own ``select_events`` does not return the notification id, which push frames
and resume need; this reads the same table by its primary key ``(originator_id,
originator_version)`` and decodes the rows with the application's mapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composed, Identifier

from infra.event_metadata import decoder
from projections.ports import Envelope


class PostgresAggregateLog:
    def __init__(self, recorder: PostgresApplicationRecorder, mapper: Mapper[Any]) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._select: Composed = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE originator_id = %s AND originator_version > %s "
            "AND originator_version <= %s AND notification_id > %s "
            "ORDER BY originator_version"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )

    def read_aggregate(
        self,
        aggregate_id: UUID,
        *,
        after_version: int = 0,
        after_position: int = 0,
        until_version: int | None = None,
    ) -> Sequence[Envelope]:
        until = until_version if until_version is not None else 2**62
        with self._recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._select, [aggregate_id, after_version, until, after_position])
            rows = cur.fetchall()
        decode = decoder(self._mapper)
        return [
            Envelope(
                int(row["notification_id"]),
                *decode(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                ),
            )
            for row in rows
        ]
