"""bench/commands.py: the baseline revision's server gets a database of its own (migrated by
its own code: on this tree's schema its projectors failed and did less work), the
server-log count sees psycopg's errors, which are named after their SQLSTATE, and a phase's
load waits for the e-mails its fresh tickets caused."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg
import pytest

from bench.benchlib import Database, stop_database, with_database
from bench.commands import log_errors, sibling_database, wait_for_outbox
from tests.conftest import subprocess_database_url

NOT_NULL = """\
2026-12-06T20:40:01Z [error    ] projector read_models failed; retrying in 1 s
Traceback (most recent call last):
  File "/tree/infra/postgres/bulk.py", line 190, in insert_rows
    cur.execute(query, params)
psycopg.errors.NotNullViolation: null value in column "public_position" of relation "rm_ticket"
DETAIL:  Failing row contains (...).
2026-12-06T20:40:02Z [error    ] projector read_models failed; retrying in 1 s
Traceback (most recent call last):
  File "/tree/projections/runner.py", line 103, in step
    batch.apply(envelopes)
ValueError: first

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/tree/projections/runner.py", line 103, in step
    batch.apply(envelopes)
psycopg.errors.NotNullViolation: null value in column "public_position" of relation "rm_ticket"
2026-12-06T20:40:03Z [warning  ] Unauthorized: /api/auth/me
"""


def test_psycopg_errors_in_the_server_log_are_counted_once_per_chain() -> None:
    counts = log_errors(NOT_NULL)
    key = 'NotNullViolation: null value in column "public_position" of relation "rm_ticket"'
    assert counts == {key: 2}


def test_a_log_without_tracebacks_has_no_errors() -> None:
    assert not log_errors("2026-12-06T20:40:03Z [warning  ] Unauthorized: /api/auth/me\n")


def _exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@pytest.mark.django_db
def test_the_baseline_gets_a_fresh_database_beside_the_run_s_and_it_is_dropped() -> None:
    url = subprocess_database_url()
    name = urlsplit(url).path.lstrip("/")
    db = Database(url, "the test server", name)
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:  # a leftover of an earlier run
        conn.execute(f'DROP DATABASE IF EXISTS "{name}_baseline" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}_baseline"')
    with psycopg.connect(with_database(url, f"{name}_baseline"), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (id int)")

    other = sibling_database(db, "baseline")
    try:
        assert other.name == f"{name}_baseline"
        assert other.url == with_database(url, f"{name}_baseline")
        assert other.embedded is None
        assert other.admin_url == admin
        # Fresh: what an earlier run left there is gone, so its server migrates it itself.
        tables = other.query("SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'")
        assert tables == [(0,)]
        assert other.query("SELECT current_database()") == [(f"{name}_baseline",)]
    finally:
        stop_database(other)
    assert not _exists(admin, f"{name}_baseline")
    assert _exists(admin, name)  # the run's own database is left alone


def _outbox_row(status: str, position: int) -> int:
    from django.utils import timezone

    from infra.postgres.models import NotificationOutboxRecord

    now = timezone.now()
    row = NotificationOutboxRecord.objects.create(
        notification_id=uuid4(),
        position=position,
        recipient_id="agent",
        kind="assigned_to_you",
        ticket_id=uuid4(),
        created_at=now,
        status=status,
        available_at=now,
    )
    return int(row.id)


@pytest.mark.django_db(transaction=True)
def test_a_phase_starts_once_the_e_mails_its_tickets_caused_are_sent() -> None:
    from infra.postgres.models import NotificationOutboxRecord

    db = Database(subprocess_database_url(), "the test server", "test")
    done = _outbox_row("sent", 1)
    waiting = _outbox_row("pending", 2)
    sent_at: list[float] = []

    def send_later() -> None:
        time.sleep(0.5)
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("UPDATE notification_outbox SET status = 'sent' WHERE id = %s", (waiting,))
        sent_at.append(time.monotonic())

    sender = threading.Thread(target=send_later)
    sender.start()
    try:
        wait_for_outbox(db, timeout=30)
        returned = time.monotonic()
    finally:
        sender.join()
        db.close()
    assert sent_at, "wait_for_outbox returned before the pending e-mail was sent"
    assert returned >= sent_at[0]
    mine = NotificationOutboxRecord.objects.filter(id__in=[done, waiting])
    assert set(mine.values_list("id", "status")) == {
        (done, "sent"),
        (waiting, "sent"),
    }


@pytest.mark.django_db(transaction=True)
def test_an_e_mail_that_stays_pending_does_not_hold_the_phase_forever() -> None:
    db = Database(subprocess_database_url(), "the test server", "test")
    stuck = _outbox_row("pending", 1)  # nobody sends it (a retry later, or no sender)
    try:
        wait_for_outbox(db, timeout=30)  # returns once the count stops moving
        left = db.query("SELECT status FROM notification_outbox WHERE id = %s", (stuck,))
    finally:
        db.close()
    assert left == [("pending",)]
