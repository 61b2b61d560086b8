"""PostgreSQL adapter of the notification projector, and the e-mail outbox it fills.

``PostgresNotificationsState`` is the projector's batched ``NotificationsState``: a batch
loads the ticket facts its events touch with one query, lets the projector decide in memory,
then writes the facts, the in-app notifications (``rm_notification``) and one outbox row per
e-mail (``notification_outbox``) in the batch's transaction, together with the projector's
position: each event's notifications and e-mails are recorded exactly once. The rows the
batch added to the outbox are handed to ``on_outbox`` after the transaction commits (to
enqueue their Celery tasks); a crash in between leaves them pending for the sweep.

Rebuilds write ``rm_notification`` and ``rm_notification_ticket`` into their ``__rebuild``
copies but never copy the outbox: a rebuilding batch adds outbox rows only for events the
live projector has not applied yet (it could not have, before the swap), and with ``ON
CONFLICT DO NOTHING`` on ``(position, recipient, kind)``. Everything already e-mailed stays
as it was, so a rebuild sends nothing twice.

The outbox functions below (``claim``, ``mark_sent`` ...) are what the e-mail task uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from psycopg.types.json import Jsonb

from infra.postgres.bulk import IGNORE_CONFLICTS, insert_rows, select_sql, update_on_conflict
from projections import notifications
from projections.notifications import Notification, TicketFacts
from projections.ports import Envelope

FACTS = "rm_notification_ticket"
NOTIFICATIONS = "rm_notification"
OUTBOX = "notification_outbox"
TABLES = [NOTIFICATIONS, FACTS]  # what a rebuild copies and swaps; never the outbox

FACT_COLUMNS = ["id", "customer_id", "subject", "status", "agent_id", "version"]
NOTIFICATION_COLUMNS = ["id", "user_id", "kind", "ticket_id", "payload", "created_at", "position"]
# Until then the task enqueued after the commit has the row to itself; then the sweep may
# (DESKSTREAM_OUTBOX_ENQUEUE_GRACE seconds: a task lost with the broker waits this long).
ENQUEUE_GRACE = timedelta(seconds=settings.OUTBOX_ENQUEUE_GRACE)

OutboxCallback = Callable[[list[int]], None]
_OUTBOX_INSERT = (
    f"INSERT INTO {OUTBOX} (notification_id, position, recipient_id, kind, ticket_id, payload,"  # noqa: S608
    " created_at, status, attempts, available_at, sent_at, last_error) VALUES"
    " (%s, %s, %s, %s, %s, %s, now(), %s, 0, now() + %s * interval '1 second', NULL, %s)"
    " ON CONFLICT DO NOTHING RETURNING id"
)


class PostgresNotificationsState:
    """``projections.notifications.NotificationsState`` over the projector's tables."""

    def __init__(
        self,
        cursor: Any,
        suffix: str = "",
        *,
        on_outbox: OutboxCallback | None = None,
        email_max_age: timedelta | None = None,
    ) -> None:
        """``email_max_age``: an e-mail for an event older than this when the projector gets
        to it is recorded as ``skipped`` (a first run over an old history, a long outage)."""
        self.cur = cursor
        self._max_age = email_max_age
        self.suffix = suffix
        self.facts_table = FACTS + suffix
        self.notifications_table = NOTIFICATIONS + suffix
        self._on_outbox = on_outbox
        self._facts: dict[UUID, TicketFacts] = {}
        self._dirty: set[UUID] = set()
        self._new: list[Notification] = []

    # ----------------------------------------------------------- NotificationsState
    def ticket(self, ticket_id: UUID) -> TicketFacts | None:
        return self._facts.get(ticket_id)

    def put_ticket(self, facts: TicketFacts) -> None:
        self._facts[facts.id] = facts
        self._dirty.add(facts.id)

    def add(self, notification: Notification) -> None:
        self._new.append(notification)

    # ----------------------------------------------------------- batching
    def preload(self, envelopes: Sequence[Envelope]) -> None:
        ids = list({e.aggregate_id for e in envelopes} - self._facts.keys())
        if not ids:
            return
        self.cur.execute(select_sql(self.facts_table, FACT_COLUMNS, "id = ANY(%s)"), [ids])
        for values in self.cur.fetchall():
            facts = TicketFacts(*values)
            self._facts[facts.id] = facts

    def flush(self) -> None:
        if self._dirty:
            insert_rows(
                self.cur,
                self.facts_table,
                FACT_COLUMNS,
                [[getattr(self._facts[i], c) for c in FACT_COLUMNS] for i in self._dirty],
                on_conflict=update_on_conflict("id", FACT_COLUMNS),
            )
        if self._new:
            insert_rows(
                self.cur,
                self.notifications_table,
                NOTIFICATION_COLUMNS,
                [
                    [
                        n.id,
                        n.user_id,
                        n.kind,
                        n.ticket_id,
                        Jsonb(n.payload),
                        n.created_at,
                        n.position,
                    ]
                    for n in self._new
                ],
                on_conflict=IGNORE_CONFLICTS,
            )
            added = self._add_to_outbox([n for n in self._new if n.email])
            if added and self._on_outbox is not None:
                callback = self._on_outbox
                transaction.on_commit(lambda: callback(added), robust=True)
        self._dirty.clear()
        self._new.clear()

    def _add_to_outbox(self, emails: list[Notification]) -> list[int]:
        if not emails:
            return []
        if self.suffix:
            # A rebuild: the live projector has already e-mailed everything up to its position.
            self.cur.execute(
                "SELECT position FROM projection_position WHERE name = %s", [notifications.NAME]
            )
            row = self.cur.fetchone()
            live = int(row[0]) if row else 0
            emails = [n for n in emails if n.position > live]
        oldest = datetime.now(UTC) - self._max_age if self._max_age is not None else None
        ids: list[int] = []
        for n in emails:  # RETURNING gives the rows this batch really added, in order
            stale = oldest is not None and n.created_at < oldest
            self.cur.execute(
                _OUTBOX_INSERT,
                [
                    n.id, n.position, n.user_id, n.kind, n.ticket_id, Jsonb(n.payload),
                    "skipped" if stale else "pending", ENQUEUE_GRACE.total_seconds(),
                    "too old when projected" if stale else "",
                ],
            )  # fmt: skip
            row = self.cur.fetchone()
            if row is not None and not stale:
                ids.append(int(row[0]))
        return ids


def handler(envelope: Envelope, state: Any) -> None:
    notifications.handle(envelope, state)


# ------------------------------------------------------------------------------ the outbox
@dataclass(frozen=True)
class OutboxRow:
    id: int
    notification_id: UUID
    position: int
    recipient_id: str
    kind: str
    ticket_id: UUID
    payload: dict[str, Any]
    attempts: int


_ROW = "id, notification_id, position, recipient_id, kind, ticket_id, payload, attempts"


def claim(outbox_id: int) -> OutboxRow | None:
    """Lock a pending row for the current transaction; None if it is not pending any more
    (sent, given up) or another task holds it right now. Call inside ``transaction.atomic``."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {_ROW} FROM {OUTBOX} WHERE id = %s AND status = 'pending' "  # noqa: S608
            "FOR UPDATE SKIP LOCKED",
            [outbox_id],
        )
        row = cur.fetchone()
    if row is None:
        return None
    values = list(row)
    if isinstance(values[6], str):  # Django's connection hands jsonb over as text
        values[6] = json.loads(values[6])
    return OutboxRow(*values)


def mark_sent(outbox_id: int) -> None:
    _finish(outbox_id, "sent", "", sent=True)


def mark_skipped(outbox_id: int, reason: str) -> None:
    _finish(outbox_id, "skipped", reason, sent=False)


def _finish(outbox_id: int, status: str, error: str, *, sent: bool) -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET status = %s, attempts = attempts + 1, last_error = %s, "  # noqa: S608
            "sent_at = CASE WHEN %s THEN clock_timestamp() ELSE NULL END WHERE id = %s",
            [status, error[:2000], sent, outbox_id],
        )


def mark_failed(outbox_id: int, error: str, *, retry_in: timedelta | None) -> None:
    """Count a failed attempt: try again after ``retry_in`` (the sweep), or give up (None)."""
    with connection.cursor() as cur:
        if retry_in is None:
            cur.execute(
                f"UPDATE {OUTBOX} SET status = 'failed', attempts = attempts + 1, "  # noqa: S608
                "last_error = %s WHERE id = %s",
                [error[:2000], outbox_id],
            )
        else:
            cur.execute(
                f"UPDATE {OUTBOX} SET attempts = attempts + 1, last_error = %s, "  # noqa: S608
                "available_at = clock_timestamp() + %s * interval '1 second' WHERE id = %s",
                [error[:2000], retry_in.total_seconds(), outbox_id],
            )


def due(*, at: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending rows whose time has come: never enqueued (a crash after the commit), or
    failed and waiting for their next attempt. Pushes each one's ``available_at`` forward
    by the grace period, so sweeps that overlap do not enqueue a row many times."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"SELECT id FROM {OUTBOX} WHERE status = 'pending' "  # noqa: S608
            "AND available_at <= coalesce(%s, now()) ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED",
            [at, limit],
        )
        ids = [int(r[0]) for r in cur.fetchall()]
        if ids:
            cur.execute(
                f"UPDATE {OUTBOX} SET available_at = now() + %s * interval '1 second' "  # noqa: S608
                "WHERE id = ANY(%s)",
                [ENQUEUE_GRACE.total_seconds(), ids],
            )
    return ids


def outbox_depth() -> dict[str, int]:
    """E-mails not sent (yet), by status: ``pending`` (to send or retry) and ``failed``
    (given up); both 0 when there are none."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT status, count(*) FROM {OUTBOX} WHERE status IN ('pending', 'failed') "  # noqa: S608
            "GROUP BY status"
        )
        found = {str(status): int(n) for status, n in cur.fetchall()}
    return {"pending": found.get("pending", 0), "failed": found.get("failed", 0)}


def outbox_position(outbox_id: int) -> int | None:
    """The log position of the event an outbox row's e-mail is about."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT position FROM {OUTBOX} WHERE id = %s", [outbox_id])  # noqa: S608
        row = cur.fetchone()
    return int(row[0]) if row else None
