"""E-mail notifications end to end with real servers: a Celery worker process on Redis and an
SMTP server (aiosmtpd) on loopback. The exact mails that arrive are asserted.

Redis: the one ``scripts/with_services.py`` found or started (``DESKSTREAM_REDIS_URL``) on its
database 5 with a queue name of this run's own, else a ``redis-server`` started here on a
free port (stopped by PID). The projector and the sweep run as ``manage.py`` subprocesses
against the test database, so the e-mails go the way production sends them: commit, enqueue
to Redis, the worker locks the outbox row, renders, sends over SMTP, marks it sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from celery import Celery

from command_api.application import Actor, get_application
from config.celery import SEND
from domain.lifecycle import Role
from infra.postgres.models import NotificationOutboxRecord
from projections import notifications as n
from tests.conftest import ROOT, create_user, free_port, subprocess_database_url
from tests.integration.test_notifications import project_without_enqueue, skip_history
from tests.support.celery_worker import start_worker, stop_worker
from tests.support.redis import redis_server_binary
from tests.support.smtp import Received, SmtpSink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REDIS_DB = 5
PUBLIC_URL = "http://desk.example.test"
worker_log: list[list[str]] = []  # the worker's output, shown when a test fails


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    given = os.environ.get("DESKSTREAM_REDIS_URL")
    if given:
        parts = urlsplit(given)
        yield urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
        return
    if _port_open(6379):
        yield f"redis://127.0.0.1:6379/{REDIS_DB}"
        return
    binary = redis_server_binary()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/{REDIS_DB}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def queue(broker_url: str) -> Iterator[str]:
    name = f"deskstream-test-notify-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(broker_url)
    for key in client.scan_iter(match=f"*{name}*"):  # the queue and kombu's bindings of it
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port()).start()
    yield sink
    sink.stop()


def service_env(broker_url: str, queue: str, smtp: SmtpSink) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DESKSTREAM_DEBUG": "1",
        "DESKSTREAM_CELERY_BROKER_URL": broker_url,
        "DESKSTREAM_CELERY_EAGER": "0",
        "DESKSTREAM_CELERY_QUEUE": queue,
        "DESKSTREAM_SMTP_HOST": "127.0.0.1",
        "DESKSTREAM_SMTP_PORT": str(smtp.port),
        "DESKSTREAM_EMAIL_OUTBOX": "0",
        "DESKSTREAM_PUBLIC_URL": PUBLIC_URL,
        "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
    }
    env.pop("PYTEST_VERSION", None)
    return env


@pytest.fixture(scope="module")
def worker(
    django_db_setup: Any, broker_url: str, queue: str, smtp: SmtpSink
) -> Iterator[subprocess.Popen[str]]:
    """``celery -A config.celery worker --pool=solo`` on this run's queue, on the test
    database (hence after ``django_db_setup``)."""
    proc, lines = start_worker(queue, service_env(broker_url, queue, smtp))
    worker_log[:] = [lines]
    yield proc
    stop_worker(proc)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def actor(user: Any) -> Actor:
    return Actor(str(user.pk), Role(user.role))


def people() -> dict[str, Any]:
    customer, ada, admin = create_user("customer"), create_user("agent"), create_user("admin")
    for user, first, last in (
        (customer, "Maria", "Garcia"),
        (ada, "Ada", "Lovelace"),
        (admin, "Grace", "Hopper"),
    ):
        user.first_name, user.last_name = first, last
        user.save()
    return {"customer": customer, "ada": ada, "admin": admin}


def body(received: Received, kind: str) -> str:
    part = received.message.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def subject(received: Received) -> str:
    """The Subject as a reader shows it: a long one is folded right after "Subject:", and
    Python's parser keeps the folding space that RFC 5322 readers drop."""
    return str(received.message["Subject"]).strip()


def summary(mails: list[Received]) -> list[tuple[tuple[str, ...], str, str]]:
    return sorted((m.rcpt_tos, str(m.message["To"]), subject(m)) for m in mails)


def expect(inbox: SmtpSink, count: int) -> list[Received]:
    """The first ``count`` mails (failing with the worker's log if they do not come)."""
    mails = inbox.wait_for(count)
    if len(mails) < count:
        tail = "".join(worker_log[0][-60:]) if worker_log else ""
        pytest.fail(f"{len(mails)} of {count} mails arrived; the worker said:\n{tail}")
    return mails


@pytest.fixture
def inbox(smtp: SmtpSink, worker: subprocess.Popen[str]) -> SmtpSink:
    smtp.clear()
    return smtp


def test_the_worker_sends_exactly_the_expected_mails(
    inbox: SmtpSink, broker_url: str, queue: str
) -> None:
    skip_history()
    app, p = get_application(), people()
    customer, ada, admin = p["customer"], p["ada"], p["admin"]
    tid = app.open_ticket(
        actor(customer),
        customer_id=str(customer.pk),
        subject='Printer "on fire" ${site_name}',
        description="Smoke",
    ).id
    app.assign_ticket(tid, actor(admin), agent_id=str(ada.pk))
    app.post_message(tid, actor(ada), body="Which printer?\n<b>Bold</b> & more")
    app.post_message(tid, actor(ada), body="Internal: VIP", internal=True)  # no mail
    app.post_message(tid, actor(customer), body="Floor 2")  # the agent: in-app only
    app.change_status(tid, actor(ada), status="resolved")

    manage(service_env(broker_url, queue, inbox), "projector", "run", n.NAME, "--until-caught-up")
    mails = expect(inbox, 4)
    time.sleep(1.0)  # nothing more may come
    assert len(inbox.received) == 4
    title = 'Printer "on fire" ${site_name}'
    maria = f"Maria Garcia <{customer.email}>"
    assert summary(mails) == sorted(
        [
            (
                (ada.email,),
                f"Ada Lovelace <{ada.email}>",
                f"[Deskstream] Assigned to you: {title}",
            ),
            ((customer.email,), maria, f'[Deskstream] Your ticket "{title}" is now Assigned'),
            ((customer.email,), maria, f'[Deskstream] New reply on "{title}"'),
            ((customer.email,), maria, f'[Deskstream] Your ticket "{title}" is now Resolved'),
        ]
    )
    url = f"{PUBLIC_URL}/tickets/{tid}"
    reply = next(m for m in mails if "New reply" in subject(m))
    assert reply.mail_from == "support@deskstream.test"
    assert str(reply.message["From"]) == "Deskstream <support@deskstream.test>"
    assert body(reply, "plain") == (
        f'Hello Maria Garcia,\n\nAda Lovelace replied to your ticket "{title}":\n\n'
        f"Which printer?\n<b>Bold</b> & more\n\nRead and answer: {url}\n\n-- \nDeskstream\n"
    )
    assert body(reply, "html") == (
        "<p>Hello Maria Garcia,</p>\n"
        '<p>Ada Lovelace replied to your ticket <strong>Printer "on fire" ${site_name}'
        "</strong>:</p>\n"
        "<blockquote>Which printer?<br>\n&lt;b&gt;Bold&lt;/b&gt; &amp; more</blockquote>\n"
        f'<p><a href="{url}" rel="noopener noreferrer">Read and answer</a></p>\n'
        "<p>Deskstream</p>\n"
    )
    assigned = next(m for m in mails if "Assigned to you" in subject(m))
    assert body(assigned, "plain") == (
        f'Hello Ada Lovelace,\n\nGrace Hopper assigned the ticket "{title}" from Maria Garcia '
        f"to you.\n\nOpen it: {url}\n\n-- \nDeskstream\n"
    )
    status = [m for m in mails if "is now" in subject(m)]
    assert sorted(body(m, "plain").split("\n")[2] for m in status) == [
        f'the status of your ticket "{title}" changed from Assigned to Resolved.',
        f'the status of your ticket "{title}" changed from Open to Assigned.',
    ]
    rows = NotificationOutboxRecord.objects.filter(ticket_id=tid)
    assert sorted(r.status for r in rows) == ["sent"] * 4
    assert {str(r.notification_id) for r in rows} == {
        str(m.message["X-Deskstream-Notification"]) for m in mails
    }


def test_a_duplicated_or_retried_task_sends_once(
    inbox: SmtpSink, broker_url: str, queue: str
) -> None:
    skip_history()
    app, p = get_application(), people()
    tid = app.open_ticket(
        actor(p["customer"]), customer_id=str(p["customer"].pk), subject="Once", description=""
    ).id
    app.post_message(tid, actor(p["admin"]), body="Hello")
    project_without_enqueue()  # rows only; the test enqueues them itself
    [row] = NotificationOutboxRecord.objects.filter(ticket_id=tid)
    sender = Celery("test-sender", broker=broker_url)
    try:
        for _ in range(3):  # the same task three times, as a redelivery or a double enqueue would
            sender.send_task(SEND, args=[row.id], queue=queue)
    finally:
        sender.close()
    [mail] = expect(inbox, 1)
    time.sleep(2.0)  # the two duplicates have run meanwhile
    assert len(inbox.received) == 1
    assert mail.rcpt_tos == (p["customer"].email,)
    assert subject(mail) == '[Deskstream] New reply on "Once"'
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_the_sweep_sends_what_was_never_enqueued(
    inbox: SmtpSink, broker_url: str, queue: str
) -> None:
    skip_history()
    app, p = get_application(), people()
    tid = app.open_ticket(
        actor(p["customer"]), customer_id=str(p["customer"].pk), subject="Lost", description=""
    ).id
    app.assign_ticket(tid, actor(p["admin"]), agent_id=str(p["ada"].pk))
    # The projector committed and died before enqueueing: the rows wait, nothing is sent.
    project_without_enqueue()
    env = service_env(broker_url, queue, inbox)
    assert manage(env, "outbox", "sweep").strip() == "enqueued 0"  # not due yet
    time.sleep(1.0)
    assert inbox.received == []
    assert manage(env, "outbox", "sweep", "--all").strip() == "enqueued 2"
    mails = expect(inbox, 2)
    assert summary(mails) == sorted(
        [
            (
                (p["ada"].email,),
                f"Ada Lovelace <{p['ada'].email}>",
                "[Deskstream] Assigned to you: Lost",
            ),
            (
                (p["customer"].email,),
                f"Maria Garcia <{p['customer'].email}>",
                '[Deskstream] Your ticket "Lost" is now Assigned',
            ),
        ]
    )
    assert manage(env, "outbox", "sweep", "--all").strip() == "enqueued 0"  # all sent now
    status = manage(env, "outbox", "status")
    assert "pending  0" in status
