"""No e-mail is sent twice when the sending process is killed (``kill -9``) or loses its
database connection at a chosen point of an SMTP send (ADR 0048).

A real SMTP server (aiosmtpd) holds the delivering process at a chosen step: in ``RCPT`` (the
message not handed over yet) or in ``DATA`` after the end of the message's data arrived (the
server has it, the sender has not heard so). There the test sends ``SIGKILL`` to the process
(``manage.py shell`` running the e-mail task's ``deliver``), or terminates its PostgreSQL
connections, then lets the server go on. What follows is what production does after such a
crash: the task is delivered again, and the sweep (``manage.py outbox sweep --all``, which
also treats every lease as run out) re-enqueues what it finds. The server must then hold the
message exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from command_api.application import Actor, get_application
from domain.lifecycle import Role
from infra.postgres.models import NotificationOutboxRecord
from tests.conftest import ROOT, create_user, free_port, subprocess_database_url
from tests.integration.test_notifications import project_without_enqueue, skip_history
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class HoldingSink(SmtpSink):
    """An SMTP server that, once, holds the session at ``step`` (``rcpt`` or ``data``: after
    the message's data ended and was stored) until ``release`` is set."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.step = ""
        self.reached = threading.Event()
        self.release = threading.Event()

    async def _hold(self, step: str) -> None:
        if self.step == step and not self.reached.is_set():
            self.reached.set()
            await asyncio.to_thread(self.release.wait, 60)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        await self._hold("rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        await self._hold("data")
        return answer

    def copies(self) -> Counter[str]:
        return Counter(str(r.message["Message-ID"]) for r in self.received)


@pytest.fixture
def sink() -> Iterator[HoldingSink]:
    server = HoldingSink(free_port()).start()
    assert isinstance(server, HoldingSink)
    yield server
    server.release.set()
    server.stop()


SENDER_APP = "deskstream test e-mail sender"


def env(sink: SmtpSink) -> dict[str, str]:
    values = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DESKSTREAM_DEBUG": "1",
        "DESKSTREAM_CELERY_EAGER": "1",  # the sweep's tasks run in its process
        "DESKSTREAM_SMTP_HOST": "127.0.0.1",
        "DESKSTREAM_SMTP_PORT": str(sink.port),
        "DESKSTREAM_EMAIL_OUTBOX": "0",
        "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
        # libpq's default application_name: the connection-loss test ends these alone (the
        # suite's other connections to the test database, its servers', stay).
        "PGAPPNAME": SENDER_APP,
    }
    values.pop("PYTEST_VERSION", None)
    return values


def deliver(sink: SmtpSink, outbox_id: int) -> subprocess.Popen[str]:
    """The e-mail task's work for one row, in a process of its own."""
    code = f"from config import bootstrap\nprint('OUTCOME', bootstrap.deliver({outbox_id}))"
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env(sink),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def outcome(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    return out.rsplit("OUTCOME ", 1)[1].strip()


def sweep_all(sink: SmtpSink) -> None:
    """The sweep once every lease has run out (it runs the tasks it enqueues right there)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "outbox", "sweep", "--all"],
        cwd=ROOT,
        env=env(sink),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def one_email() -> NotificationOutboxRecord:
    """One pending outbox row (a public reply to the customer), never enqueued."""
    skip_history()
    customer, agent = create_user("customer"), create_user("agent")
    app = get_application()
    tid = app.open_ticket(
        Actor(str(customer.pk), Role.CUSTOMER),
        customer_id=str(customer.pk),
        subject="Crash test",
        description="Boom",
    ).id
    app.post_message(tid, Actor(str(agent.pk), Role.AGENT), body="On it")
    project_without_enqueue()
    return NotificationOutboxRecord.objects.get(ticket_id=tid, kind="public_reply")


def held(sink: HoldingSink, step: str, row: NotificationOutboxRecord) -> subprocess.Popen[str]:
    sink.step = step
    proc = deliver(sink, row.id)
    if not sink.reached.wait(90):
        proc.kill()
        pytest.fail("the SMTP server never saw the step: " + proc.communicate()[0][-3000:])
    return proc


def killed(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_killed_after_the_server_has_the_message_it_is_not_sent_again(
    sink: HoldingSink,
) -> None:
    row = one_email()
    proc = held(sink, "data", row)
    killed(proc)  # between the send and the "sent" mark
    sink.release.set()
    assert outcome(deliver(sink, row.id)) == "not_pending"  # the task, delivered again
    sweep_all(sink)
    assert list(sink.copies().values()) == [1]
    row.refresh_from_db()
    assert row.status == "uncertain"  # sent, but nobody recorded the server's answer
    assert "after it handed the message over" in row.last_error
    sweep_all(sink)  # and never again
    assert list(sink.copies().values()) == [1]


def test_killed_before_the_hand_over_it_is_sent_once_later(sink: HoldingSink) -> None:
    row = one_email()
    proc = held(sink, "rcpt", row)
    killed(proc)
    sink.release.set()
    assert outcome(deliver(sink, row.id)) == "not_pending"  # claimed until its lease ends
    assert sink.copies() == Counter()
    sweep_all(sink)  # the lease ran out: pending again, and sent
    assert list(sink.copies().values()) == [1]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)


def test_the_database_connection_lost_during_the_send_still_sends_once(
    sink: HoldingSink,
) -> None:
    row = one_email()
    proc = held(sink, "data", row)
    with psycopg.connect(subprocess_database_url(), autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [SENDER_APP],
        ).fetchone()
    assert ended is not None
    assert ended[0] >= 1  # the sender's connection, held open mid-send
    sink.release.set()
    assert outcome(proc) == "sent"  # it reconnects to record it
    sweep_all(sink)
    assert list(sink.copies().values()) == [1]
    row.refresh_from_db()
    assert row.status == "sent"
