"""Notification delivery: enqueueing the outbox's e-mails, sending each at most once, and the
sweep that re-enqueues what was lost.

The notification projector (``projections.notifications``) writes in-app notifications and
outbox rows through ``infra.postgres.notifications``; after each batch commits, the new
outbox rows are enqueued as Celery tasks (``enqueue_each``, with the task the composition
root hands in). A task (``deliver``) claims its row (committed at once, under a lease),
renders the kind's template (``infra.email``) with names from ``infra.auth``, and sends it
through the configured ``EmailSender`` (the local outbox and/or SMTP), which calls back right
before the step that cannot be taken back (the end of the SMTP data): the row is then
recorded ``handed_over``, committed, before that step is taken. So no e-mail is ever sent
twice, whatever dies when: a task lost before the hand-over leaves a claimed row that the
sweep makes pending again once its lease ran out (the server never had the message), one
lost after it leaves a row the sweep settles as ``uncertain`` and never sends again (at most
once there; docs/notifications.md, ADR 0048). The sweep also re-enqueues rows that were never
enqueued (a crash after the commit) or whose attempt failed, with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from domain.lifecycle import Status
from domain.numbers import parse_natural
from infra.auth.models import User
from infra.email import templates
from infra.email.models import stored_template, wants_sla_emails
from infra.email.ports import (
    EmailDeferredError,
    EmailRejectedError,
    EmailSender,
    OutgoingEmail,
)
from infra.email.satisfaction import rating_links
from infra.postgres import notifications as outbox
from infra.postgres.notifications import PostgresNotificationsState
from infra.postgres.sla import reminder_still_due
from projections.notifications import OPT_IN_EMAIL_KINDS, SLA_REMINDER

log = logging.getLogger(__name__)

SYSTEM_NAME = "Deskstream"  # who "assigned" a ticket when automation did
MAX_BACKOFF = timedelta(hours=1)

Enqueue = Callable[[list[int]], None]


# ------------------------------------------------------------------------------ projector
def enqueue_each(send: Callable[[int], object]) -> Enqueue:
    """Enqueue one task per outbox row with ``send`` (after the commit that wrote them)."""

    def enqueue(outbox_ids: list[int]) -> None:
        for outbox_id in outbox_ids:
            try:
                send(outbox_id)
            except Exception:  # the broker is away: the sweep enqueues it later
                log.warning("could not enqueue e-mail %s; the sweep will", outbox_id,
                            exc_info=True)  # fmt: skip

    return enqueue


def notifications_state(
    cursor: Any, suffix: str, *, enqueue: Enqueue
) -> PostgresNotificationsState:
    return PostgresNotificationsState(
        cursor,
        suffix,
        on_outbox=enqueue,
        email_max_age=timedelta(hours=settings.EMAIL_MAX_AGE_HOURS),
    )


# ------------------------------------------------------------------------------ delivery
class ClaimLostError(Exception):
    """The row's lease ran out before the hand-over and the sweep took it back: this task
    must not hand its message over."""


def deliver(outbox_id: int, sender: EmailSender) -> str:
    """Send one outbox row's e-mail, never twice; returns what happened. Call it outside any
    transaction: the claim and the hand-over are each committed at once."""
    row = outbox.claim(outbox_id, lease=timedelta(seconds=settings.OUTBOX_LEASE))
    if row is None:
        return "not_pending"  # sent, given up, or another task holds it now
    skip = _opted_out_or_cancelled(row)
    if skip:
        outbox.mark_skipped(row, skip)
        return "skipped"
    handed = False

    def hand_over() -> None:
        nonlocal handed
        if not _through_outages(outbox.hand_over, row, "recording the hand-over"):
            raise ClaimLostError
        handed = True

    try:
        email = compose(row)
        if email is None:
            outbox.mark_skipped(row, "no active recipient with an e-mail address")
            return "skipped"
        sender.send(email, hand_over)
    except ClaimLostError:
        log.warning("e-mail %s: the claim's lease ran out before the hand-over", row.id)
        return "claim_lost"
    except EmailRejectedError as err:
        outbox.mark_failed(row, str(err), retry_in=None)
        log.warning("e-mail %s rejected: %s", row.id, err)
        return "failed"
    except Exception as err:
        if handed and not isinstance(err, EmailDeferredError):
            # The server may have it: never sent again (at most once across this).
            outbox.mark_uncertain(row, f"{type(err).__name__}: {err}")
            log.warning("e-mail %s: outcome unknown after the hand-over", row.id, exc_info=True)
            return "uncertain"
        give_up = row.attempts >= settings.EMAIL_MAX_ATTEMPTS
        retry_in = (
            None if give_up else min(timedelta(seconds=30 * 2 ** (row.attempts - 1)), MAX_BACKOFF)
        )
        outbox.mark_failed(row, f"{type(err).__name__}: {err}", retry_in=retry_in)
        log.warning("e-mail %s attempt %s failed", row.id, row.attempts, exc_info=True)
        return "failed" if give_up else "retry"
    _record_sent(row)
    return "sent"


OUTAGE_TRIES = 8


def _record_sent(row: outbox.OutboxRow) -> None:
    """Mark the row sent, through a dropped connection or a database restart (a row left
    ``handed_over`` would be settled as ``uncertain``: never sent twice, but reported so)."""
    _through_outages(outbox.mark_sent, row, "recording it sent")


def _through_outages(
    step: Callable[[outbox.OutboxRow], bool], row: outbox.OutboxRow, what: str
) -> bool:
    """Run an idempotent outbox ``step`` (a conditional UPDATE of this claim's row) until
    the database answers, over a fresh connection each time: through a dropped connection,
    a restart or a partition of up to about twenty seconds. Idempotent matters because a
    commit whose answer was lost on the way has happened: the retry then finds the row
    already moved and says so (the hand-over: ``handed_over`` under this claim counts), so
    a lost answer never turns a message that was never sent into an ``uncertain`` one."""
    delay = 0.25
    for _ in range(OUTAGE_TRIES - 1):
        try:
            return step(row)
        except DatabaseError:
            log.warning("e-mail %s: %s failed; retrying", row.id, what, exc_info=True)
            connection.close()  # a broken connection is never replaced otherwise
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
    return step(row)


def _opted_out_or_cancelled(row: outbox.OutboxRow) -> str:
    """Why an SLA e-mail is not sent (``""``: send it): the agent has not chosen SLA
    e-mails, or a reminder's deadline is no longer near (answered, paused, resolved, or moved
    since): the reminder is cancelled."""
    if row.kind not in OPT_IN_EMAIL_KINDS:
        return ""
    if not wants_sla_emails(row.recipient_id):
        return "the agent has not chosen SLA e-mails"
    if row.kind == SLA_REMINDER and not reminder_still_due(
        row.ticket_id, str(row.payload.get("target", "")), str(row.payload.get("deadline", ""))
    ):
        return "cancelled: the target was met or its clock stopped"
    return ""


SWEEP_BATCH = 500
SWEEP_ROUNDS = 20


def sweep(
    enqueue: Enqueue,
    *,
    at: Any = None,
    batch: int = SWEEP_BATCH,
    waiting: Callable[[], int | None] = lambda: 0,
) -> int:
    """Enqueue the due outbox rows, ``batch`` at a time (at most ``SWEEP_ROUNDS`` batches per
    sweep); returns how many. A row enqueued here is not due again before the grace period
    has passed.

    While tasks wait to run (``waiting``: the broker's queue, the e-mail thread's), nothing
    is enqueued, only lapsed claims are settled: a due row's task is most likely among those
    waiting, and one that was lost (a Redis restart empties the queue) is enqueued once they
    have run. Enqueuing every due row again at each sweep behind a backlog multiplied it:
    the 300 s fault run's queue grew to 54,000 tasks for 3,400 rows, the worker busy with
    tasks that found their row sent, and the outbox never caught up."""
    if waiting():
        outbox.due(at=at, limit=0)
        return 0
    total = 0
    for _ in range(SWEEP_ROUNDS):
        ids = outbox.due(at=at, limit=batch)
        enqueue(ids)
        total += len(ids)
        if len(ids) < batch:
            break
    return total


def _users(*user_ids: str | None) -> dict[str, User]:
    """The users these ids name, by the id as given, in one query (ids that name no user,
    or are not user ids at all, are left out)."""
    pks = {uid: pk for uid in user_ids if uid and (pk := parse_natural(uid)) is not None}
    found = User.objects.in_bulk(set(pks.values())) if pks else {}
    return {uid: found[pk] for uid, pk in pks.items() if pk in found}


def _name(users: dict[str, User], user_id: str | None) -> str:
    """The display name of ``user_id`` (from ``_users``): "" for none, the system's name
    for an id that names no user."""
    if not user_id:
        return ""
    user = users.get(user_id)
    return user.display_name if user else SYSTEM_NAME


def _label(status: str) -> str:
    try:
        return Status(status).label
    except ValueError:
        return status


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def compose(row: outbox.OutboxRow) -> OutgoingEmail | None:
    """The finished e-mail of an outbox row, in the kind's current template."""
    payload = row.payload
    # The recipient and the people the e-mail names, read at once (they are often the same).
    users = _users(row.recipient_id, payload.get("customer_id"), payload.get("actor_id"))
    recipient = users.get(row.recipient_id)
    if recipient is None or not recipient.is_active or not recipient.email:
        return None
    ticket_id = str(row.ticket_id)
    values = {
        "site_name": settings.SITE_NAME,
        "recipient_name": recipient.display_name,
        "customer_name": _name(users, payload.get("customer_id")),
        "ticket_subject": str(payload.get("ticket_subject", "")),
        "ticket_id": ticket_id,
        "ticket_url": f"{settings.PUBLIC_URL}/tickets/{ticket_id}",
        "status": _label(str(payload.get("to_status", ""))),
        "previous_status": _label(str(payload.get("from_status", ""))),
        "author_name": _name(users, payload.get("actor_id")),
        "message_excerpt": str(payload.get("excerpt", "")),
        "agent_name": recipient.display_name,
        "assigned_by": _name(users, payload.get("actor_id")),
        "target": str(payload.get("target", "")).replace("_", " "),
        "deadline": _when(str(payload.get("deadline", ""))),
    }
    parts, _ = stored_template(row.kind)
    rendered = templates.render(row.kind, parts, values)
    if (
        row.kind == templates.STATUS_CHANGED
        and payload.get("to_status") == Status.RESOLVED.value
        and row.recipient_id == str(payload.get("customer_id"))
    ):
        rendered = templates.with_rating_links(
            rendered, rating_links(row.ticket_id, row.recipient_id)
        )
    domain = settings.EMAIL_FROM.rpartition("@")[2] or "deskstream"
    return OutgoingEmail(
        to_address=recipient.email,
        to_name=recipient.display_name,
        from_address=settings.EMAIL_FROM,
        from_name=settings.EMAIL_FROM_NAME,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<{row.notification_id}@{domain}>",
        headers={
            "X-Deskstream-Notification": str(row.notification_id),
            "X-Deskstream-Ticket": ticket_id,
            "X-Deskstream-Kind": row.kind,
        },
    )


# ------------------------------------------------------------------------------ embedded mode
def sweeper_thread(
    sweep_due: Callable[[], int], interval: float, stop: threading.Event
) -> threading.Thread:
    """The periodic sweep in a thread (the embedded mode has no Celery beat)."""

    def loop() -> None:
        try:
            while not stop.wait(interval):
                try:
                    sweep_due()
                except Exception:
                    log.warning("outbox sweep failed; next try in %s s", interval, exc_info=True)
                    connection.close()  # a broken one is never replaced otherwise
        finally:
            connection.close()

    return threading.Thread(target=loop, name="outbox-sweeper", daemon=True)
