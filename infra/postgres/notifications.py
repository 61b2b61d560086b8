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
from uuid import UUID, uuid4

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

FACT_COLUMNS = ["id", "customer_id", "subject", "status", "agent_id", "version", "public_version"]
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
    claim: UUID | None = None


_ROW = "id, notification_id, position, recipient_id, kind, ticket_id, payload, attempts"


_ROW = "id, notification_id, position, recipient_id, kind, ticket_id, payload, attempts"


class OutboxStatus:
    """A row's ``status``: ``pending`` (to send, or retry when ``available_at`` comes),
    ``claimed`` (a task took it, nothing handed over yet), ``handed_over`` (its end of data
    is being written to the SMTP server, the answer not recorded yet), then ``sent``,
    ``failed`` (given up), ``skipped`` or ``uncertain`` (the task died, or lost its
    connection, after the hand-over: the message may have arrived and is not sent again)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    HANDED_OVER = "handed_over"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"


_ROW = "id, notification_id, position, recipient_id, kind, ticket_id, payload, attempts, claim"


def claim(outbox_id: int, *, lease: timedelta) -> OutboxRow | None:
    """Take a pending row for one attempt, committed at once (call it outside any
    transaction): ``claimed`` under a new claim id until ``lease`` has passed. None if it is
    not pending (sent, given up, or another task holds it)."""
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET status = 'claimed', attempts = attempts + 1, claim = %s, "  # noqa: S608
            "lease_until = clock_timestamp() + %s * interval '1 second' "
            f"WHERE id = %s AND status = 'pending' RETURNING {_ROW}",
            [uuid4(), lease.total_seconds(), outbox_id],
        )
        row = cur.fetchone()
    if row is None:
        return None
    values = list(row)
    if isinstance(values[6], str):  # Django's connection hands jsonb over as text
        values[6] = json.loads(values[6])
    return OutboxRow(*values)


def hand_over(row: OutboxRow) -> bool:
    """Record that the message is about to be handed over (``claimed`` -> ``handed_over``),
    if the claim is still this one's (its lease may have run out and the row gone to
    another task): committed before the step that cannot be taken back. Idempotent: run
    again after a lost answer, it finds the row already handed over under this claim and
    says True."""
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET status = 'handed_over' "  # noqa: S608
            "WHERE id = %s AND claim = %s AND status IN ('claimed', 'handed_over')",
            [row.id, row.claim],
        )
        return bool(cur.rowcount)


def mark_sent(row: OutboxRow) -> bool:
    """The server accepted it (also after the row was given up as ``uncertain``: now it is
    known). False if the claim is not this one's any more."""
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET status = 'sent', last_error = '', lease_until = NULL, "  # noqa: S608
            "sent_at = clock_timestamp() WHERE id = %s AND claim = %s "
            "AND status IN ('claimed', 'handed_over', 'uncertain')",
            [row.id, row.claim],
        )
        return bool(cur.rowcount)


def mark_skipped(row: OutboxRow, reason: str) -> None:
    _finish(row, "skipped", reason)


def mark_uncertain(row: OutboxRow, reason: str) -> None:
    _finish(row, "uncertain", reason)


def _finish(row: OutboxRow, status: str, error: str) -> None:
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET status = %s, last_error = %s, lease_until = NULL "  # noqa: S608
            "WHERE id = %s AND claim = %s AND status IN ('claimed', 'handed_over')",
            [status, error[:2000], row.id, row.claim],
        )


def mark_failed(row: OutboxRow, error: str, *, retry_in: timedelta | None) -> None:
    """Count a failed attempt (nothing was delivered): pending again, for the sweep after
    ``retry_in``, or given up (None)."""
    with connection.cursor() as cur:
        if retry_in is None:
            cur.execute(
                f"UPDATE {OUTBOX} SET status = 'failed', last_error = %s, lease_until = NULL "  # noqa: S608
                "WHERE id = %s AND claim = %s AND status IN ('claimed', 'handed_over')",
                [error[:2000], row.id, row.claim],
            )
        else:
            cur.execute(
                f"UPDATE {OUTBOX} SET status = 'pending', last_error = %s, lease_until = NULL, "  # noqa: S608
                "available_at = clock_timestamp() + %s * interval '1 second' "
                "WHERE id = %s AND claim = %s AND status IN ('claimed', 'handed_over')",
                [error[:2000], retry_in.total_seconds(), row.id, row.claim],
            )


LOST_BEFORE = "the sending task was lost before it handed the message over"
LOST_AFTER = "the sending task was lost after it handed the message over; not sent again"


def due(*, at: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending rows whose time has come: never enqueued (a crash after the commit), or
    failed and waiting for their next attempt. Pushes each one's ``available_at`` forward
    by the grace period, so sweeps that overlap do not enqueue a row many times.

    First, claims whose lease ran out (their task died or hangs) are settled: one that had
    not handed its message over is pending again (due now; given up after the last
    attempt), one that had is ``uncertain``: never sent again."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"UPDATE {OUTBOX} SET lease_until = NULL, last_error = %s, "  # noqa: S608
            "status = CASE WHEN attempts >= %s THEN 'failed' ELSE 'pending' END, "
            "available_at = coalesce(%s, now()) "
            "WHERE status = 'claimed' AND lease_until <= coalesce(%s, now())",
            [LOST_BEFORE, settings.EMAIL_MAX_ATTEMPTS, at, at],
        )
        cur.execute(
            f"UPDATE {OUTBOX} SET status = 'uncertain', lease_until = NULL, last_error = %s "  # noqa: S608
            "WHERE status = 'handed_over' AND lease_until <= coalesce(%s, now())",
            [LOST_AFTER, at],
        )
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


DEPTH = ("pending", "failed", "uncertain")


def outbox_depth() -> dict[str, int]:
    """E-mails not sent (yet), by status: ``pending`` (to send or retry; with those a task
    holds right now), ``failed`` (given up) and ``uncertain`` (perhaps delivered, not sent
    again); each 0 when there are none."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT CASE WHEN status IN ('claimed', 'handed_over') THEN 'pending' "  # noqa: S608
            f"ELSE status END, count(*) FROM {OUTBOX} "
            "WHERE status IN ('pending', 'claimed', 'handed_over', 'failed', 'uncertain') "
            "GROUP BY 1"
        )
        found = {str(status): int(n) for status, n in cur.fetchall()}
    return {status: found.get(status, 0) for status in DEPTH}


def outbox_position(outbox_id: int) -> int | None:
    """The log position of the event an outbox row's e-mail is about."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT position FROM {OUTBOX} WHERE id = %s", [outbox_id])  # noqa: S608
        row = cur.fetchone()
    return int(row[0]) if row else None
