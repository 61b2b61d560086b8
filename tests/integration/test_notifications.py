"""Notifications on PostgreSQL: the projector's rows and outbox, delivery at most once, the
sweep, rebuilds that send nothing again, and the notification, template and outbox APIs.

Celery runs eagerly here (``tests/conftest.py``); ``test_notification_mail.py`` runs the same
flow with a real worker on Redis and a real SMTP server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from command_api.application import Actor, get_application
from config import bootstrap as wiring
from config.bootstrap import event_source, runner, store
from domain.lifecycle import Role
from infra.email.outbox import FileOutboxEmailSender
from infra.email.ports import EmailRejectedError, HandOver, OutgoingEmail, no_hand_over
from infra.postgres import notifications as outbox
from infra.postgres.models import NotificationOutboxRecord, NotificationRecord
from infra.postgres.notifications import PostgresNotificationsState
from infra.postgres.projection_store import PostgresProjectionStore
from projections import notifications as n
from projections.runner import ProjectionRunner, rebuild

pytestmark = pytest.mark.django_db


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[OutgoingEmail] = []
        self.fail = fail

    def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
        if self.fail is not None:
            raise self.fail
        hand_over()
        self.sent.append(email)
        return email.message_id


def as_actor(user: Any) -> Actor:
    return Actor(str(user.pk), Role(user.role))


def project() -> None:
    runner(n.NAME).catch_up()


def skip_history() -> None:
    """The projector has handled everything stored before (other tests' events), and the
    e-mails earlier test files' servers left unsent are not this test's to sweep: a server
    sends from its e-mail thread (``EMAILS_IN_THREADS``), and a server stopped with a backlog
    there leaves its rows pending, as ``make run`` stopped would for its next start."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO projection_position (name, position, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            [n.NAME, event_source().head()],
        )
        cur.execute(
            "UPDATE notification_outbox SET status = 'skipped', lease_until = NULL, "
            "last_error = 'left by an earlier test file' "
            "WHERE status IN ('pending', 'claimed', 'handed_over')"
        )


def project_without_enqueue() -> None:
    """The projector as if it died right after each commit: rows written, nothing enqueued."""
    crashed = PostgresProjectionStore(
        n.NAME,
        tables=outbox.TABLES,
        state_factory=lambda cur, suffix: PostgresNotificationsState(cur, suffix),
        handler=outbox.handler,
    )
    ProjectionRunner(event_source(), crashed).catch_up()


def rows(ticket_id: UUID) -> list[tuple[str, str, str]]:
    return list(
        NotificationOutboxRecord.objects.filter(ticket_id=ticket_id)
        .order_by("id")
        .values_list("recipient_id", "kind", "status")
    )


def in_app(ticket_id: UUID) -> list[tuple[str, str]]:
    return list(
        NotificationRecord.objects.filter(ticket_id=ticket_id)
        .order_by("position", "user_id")
        .values_list("user_id", "kind")
    )


@pytest.fixture
def story(make_user: Callable[..., Any]) -> dict[str, Any]:
    """A ticket's life: assigned by the admin, answered by Ada, the customer replies, Ada
    resolves it."""
    app = get_application()
    skip_history()
    customer, ada = make_user("customer"), make_user("agent")
    for user, (first, last) in ((customer, ("Maria", "Garcia")), (ada, ("Ada", "Lovelace"))):
        user.first_name, user.last_name = first, last
        user.save()
    admin = make_user("admin")
    tid = app.open_ticket(
        as_actor(customer),
        customer_id=str(customer.pk),
        subject="Printer on fire",
        description="Smoke",
    ).id
    app.assign_ticket(tid, as_actor(admin), agent_id=str(ada.pk))
    app.post_message(tid, as_actor(ada), body="Which printer?\nThe <big> one?")
    app.post_message(tid, as_actor(customer), body="Floor 2")
    app.change_status(tid, as_actor(ada), status="resolved")
    return {"ticket": tid, "customer": customer, "ada": ada, "admin": admin}


def test_each_event_gives_its_notifications_and_e_mails_exactly_once(story: dict[str, Any]) -> None:
    tid, c, ada = story["ticket"], str(story["customer"].pk), str(story["ada"].pk)
    project()
    assert rows(tid) == [
        (ada, "assigned", "pending"),
        (c, "status_changed", "pending"),
        (c, "public_reply", "pending"),
        (c, "status_changed", "pending"),
    ]
    assert sorted(in_app(tid)) == sorted(
        [
            (ada, "assigned"),
            (c, "status_changed"),
            (ada, "status_changed"),
            (c, "public_reply"),
            (ada, "public_reply"),
            (c, "status_changed"),
        ]
    )
    # The same events again change nothing.
    projection, source = store(n.NAME), event_source()
    with projection.batch() as batch:
        batch.apply(source.read(0, 100_000))
        assert batch.applied == 0
    assert len(rows(tid)) == 4
    assert NotificationRecord.objects.filter(ticket_id=tid).count() == 6


def test_e_mails_for_events_too_old_when_projected_are_skipped(story: dict[str, Any]) -> None:
    """A first run over an old history (or after a long outage) e-mails nobody about the
    past; the in-app notifications are there all the same."""
    late = PostgresProjectionStore(
        n.NAME,
        tables=outbox.TABLES,
        state_factory=lambda cur, suffix: PostgresNotificationsState(
            cur, suffix, on_outbox=pytest.fail, email_max_age=timedelta(0)
        ),
        handler=outbox.handler,
    )
    ProjectionRunner(event_source(), late).catch_up()
    assert [s for _, _, s in rows(story["ticket"])] == ["skipped"] * 4
    assert NotificationOutboxRecord.objects.filter(
        ticket_id=story["ticket"]
    ).first().last_error == ("too old when projected")
    assert len(in_app(story["ticket"])) == 6
    assert wiring.sweep(at=timezone.now() + timedelta(days=1)) == 0


def test_delivery_renders_the_template_and_sends_once(story: dict[str, Any]) -> None:
    tid = story["ticket"]
    project()
    reply = NotificationOutboxRecord.objects.get(ticket_id=tid, kind="public_reply")
    recorder = Recorder()
    assert wiring.deliver(reply.id, recorder) == "sent"
    assert wiring.deliver(reply.id, recorder) == "not_pending"  # a retried task
    [mail] = recorder.sent
    assert (mail.to_address, mail.to_name) == (story["customer"].email, "Maria Garcia")
    assert (mail.from_address, mail.from_name) == ("support@deskstream.test", "Deskstream")
    assert mail.subject == '[Deskstream] New reply on "Printer on fire"'
    url = f"http://127.0.0.1:8000/tickets/{tid}"
    assert mail.text == (
        'Hello Maria Garcia,\n\nAda Lovelace replied to your ticket "Printer on fire":\n\n'
        f"Which printer?\nThe <big> one?\n\nRead and answer: {url}\n\n-- \nDeskstream\n"
    )
    assert mail.html == (
        "<p>Hello Maria Garcia,</p>\n"
        "<p>Ada Lovelace replied to your ticket <strong>Printer on fire</strong>:</p>\n"
        "<blockquote>Which printer?<br>\nThe &lt;big&gt; one?</blockquote>\n"
        f'<p><a href="{url}" rel="noopener noreferrer">Read and answer</a></p>\n'
        "<p>Deskstream</p>\n"
    )
    assert mail.message_id == f"<{reply.notification_id}@deskstream.test>"
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.last_error) == ("sent", 1, "")
    assert reply.sent_at is not None


def test_failures_are_retried_with_backoff_then_given_up(story: dict[str, Any]) -> None:
    project()
    row = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).first()
    assert row is not None
    before = timezone.now()
    for attempt in range(1, settings.EMAIL_MAX_ATTEMPTS):
        assert wiring.deliver(row.id, Recorder(ConnectionRefusedError("smtp down"))) == "retry"
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.last_error == "ConnectionRefusedError: smtp down"
        assert row.available_at >= before + timedelta(seconds=30 * 2 ** (attempt - 1))
    assert wiring.deliver(row.id, Recorder(ConnectionRefusedError("smtp down"))) == "failed"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", settings.EMAIL_MAX_ATTEMPTS)
    assert wiring.deliver(row.id, Recorder()) == "not_pending"


def test_a_rejected_address_is_not_retried_and_a_missing_user_is_skipped(
    story: dict[str, Any],
) -> None:
    project()
    first, second = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"])[:2]
    assert wiring.deliver(first.id, Recorder(EmailRejectedError("bad address"))) == "failed"
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("failed", 1)
    recipient = type(story["customer"]).objects.get(pk=int(second.recipient_id))
    recipient.is_active = False
    recipient.save()
    assert wiring.deliver(second.id, Recorder()) == "skipped"
    second.refresh_from_db()
    assert second.status == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_task_never_sends_while_another_holds_the_row(story: dict[str, Any]) -> None:
    """A claim is committed at once and holds the row until its lease runs out; a claim
    whose lease ran out before its hand-over is taken back and cannot hand over any more."""
    project_without_enqueue()
    row = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).first()
    assert row is not None
    lease = timedelta(seconds=settings.OUTBOX_LEASE)
    slow = outbox.claim(row.id, lease=lease)  # another task, still rendering or connecting
    assert slow is not None
    recorder = Recorder()
    assert wiring.deliver(row.id, recorder) == "not_pending"  # the duplicate skips the row
    assert wiring.sweep() == 0  # the lease has not run out
    later = timezone.now() + lease + timedelta(seconds=1)
    assert wiring.sweep(at=later) == 4  # it has: pending again, and sent (eagerly), with the rest
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert not outbox.hand_over(slow)  # the slow task may not hand its message over now
    assert not outbox.mark_sent(slow)


@pytest.mark.django_db(transaction=True)
def test_the_sweep_enqueues_nothing_while_tasks_wait_and_settles_lapsed_claims(
    story: dict[str, Any],
) -> None:
    """Behind a backlog a due row's task is most likely waiting already: the sweep adds none
    (each sweep enqueuing every due row again multiplied the fault run's queue to 54,000
    tasks for 3,400 rows) and enqueues them once nothing waits; a claim whose lease ran out
    is settled either way."""
    project_without_enqueue()
    first = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).first()
    assert first is not None
    lease = timedelta(seconds=settings.OUTBOX_LEASE)
    lapsed = outbox.claim(first.id, lease=lease)
    assert lapsed is not None
    later = timezone.now() + lease + timedelta(seconds=1)
    assert wiring.sweep(at=later, waiting=lambda: 120) == 0
    assert [s for _, _, s in rows(story["ticket"])] == ["pending"] * 4  # the claim settled
    assert wiring.sweep(at=later, waiting=lambda: None) == 4  # the broker did not answer
    assert [s for _, _, s in rows(story["ticket"])] == ["sent"] * 4


@pytest.mark.django_db(transaction=True)
def test_emails_waiting_counts_the_email_threads_queue(
    story: dict[str, Any], settings: Any, dependencies: Callable[..., None]
) -> None:
    """Under make run (eager tasks, e-mails in a thread) what waits is the thread's queue."""
    import threading

    class Holding(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.running, self.release = threading.Event(), threading.Event()

        def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
            self.running.set()
            self.release.wait(10)
            return super().send(email, hand_over)

    settings.EMAILS_IN_THREADS = True
    sender = Holding()
    dependencies(email_sender=sender)
    project_without_enqueue()
    ids = list(
        NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).values_list(
            "id", flat=True
        )
    )[:2]
    before = wiring.emails_waiting() or 0
    try:
        futures = [wiring.send_email_later(i) for i in ids]
        assert sender.running.wait(10)
        assert wiring.emails_waiting() == before + 2  # one sending, one queued
    finally:
        sender.release.set()
    for f in futures:
        f.result(10)  # type: ignore[attr-defined]
    assert wiring.emails_waiting() == before
    assert len(sender.sent) == 2


@pytest.mark.django_db(transaction=True)
def test_a_task_lost_after_the_hand_over_leaves_the_row_uncertain(story: dict[str, Any]) -> None:
    project_without_enqueue()
    row = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).first()
    assert row is not None
    lost = outbox.claim(row.id, lease=timedelta(seconds=settings.OUTBOX_LEASE))
    assert lost is not None
    assert outbox.hand_over(lost)
    later = timezone.now() + timedelta(seconds=settings.OUTBOX_LEASE + 1)
    assert wiring.sweep(at=later) == 3  # the story's other e-mails
    row.refresh_from_db()
    assert row.status == "uncertain"
    assert wiring.deliver(row.id, Recorder()) == "not_pending"
    assert outbox.outbox_depth()["uncertain"] >= 1


@pytest.mark.django_db(transaction=True)
def test_with_e_mails_in_a_thread_the_projector_never_waits_for_a_send(
    story: dict[str, Any], settings: Any, dependencies: Callable[..., None]
) -> None:
    """``EMAILS_IN_THREADS`` (``make run``: eager tasks): the batch that wrote the outbox rows
    commits and the projector goes on while the e-mails wait for a held SMTP server; then
    each is sent once, in order, from the e-mail thread."""
    import threading
    import time

    settings.EMAILS_IN_THREADS = True
    held = threading.Event()

    class Held(Recorder):
        def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
            assert held.wait(60)
            return super().send(email, hand_over)

    sender = Held()
    dependencies(email_sender=sender)
    project()  # would not return while a send is held, were they sent in its commit hook
    assert sender.sent == []
    assert runner(n.NAME).store.position() == event_source().head()
    held.set()
    deadline = time.monotonic() + 30
    while [s for _, _, s in rows(story["ticket"])] != ["sent"] * 4:
        assert time.monotonic() < deadline, rows(story["ticket"])
        time.sleep(0.1)
    assert len(sender.sent) == 4
    assert len({e.message_id for e in sender.sent}) == 4


@pytest.mark.django_db(transaction=True)
def test_a_hand_over_whose_answer_was_lost_is_found_and_sent_once(
    story: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hand-over's UPDATE commits and the connection breaks before its answer arrives
    (a network cut, as the fault run's proxy makes one): the task reconnects, finds the row
    handed over under its own claim, and sends the message, once; it is not left to the
    sweep as ``uncertain`` with nothing sent (as it was before the retry)."""
    from django.db import OperationalError

    project_without_enqueue()
    row = NotificationOutboxRecord.objects.filter(ticket_id=story["ticket"]).first()
    assert row is not None
    real = outbox.hand_over
    calls: list[bool] = []

    def answer_lost(claimed: outbox.OutboxRow) -> bool:
        done = real(claimed)
        calls.append(done)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return done

    monkeypatch.setattr(outbox, "hand_over", answer_lost)
    recorder = Recorder()
    assert wiring.deliver(row.id, recorder) == "sent"
    assert calls == [True, True]  # committed the first time; found so the second
    assert len(recorder.sent) == 1
    row.refresh_from_db()
    assert row.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_what_a_crash_left_unenqueued(
    story: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projector that commits its batch and dies before enqueueing (modelled by a state
    without the enqueue callback): the rows wait, and the sweep sends them once."""
    tid = story["ticket"]
    project_without_enqueue()
    assert [s for _, _, s in rows(tid)] == ["pending"] * 4
    assert wiring.sweep() == 0  # not due yet: the enqueue after the commit may still come
    outbox_dir = FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR)
    before = {e.name for e in outbox_dir.entries()}
    later = timezone.now() + outbox.ENQUEUE_GRACE + timedelta(seconds=1)
    assert wiring.sweep(at=later, batch=3) == 4  # two rounds  # eager: the tasks ran right here
    assert [s for _, _, s in rows(tid)] == ["sent"] * 4
    new = [e for e in outbox_dir.entries() if e.name not in before]
    assert sorted(e.subject for e in new) == sorted(
        [
            "[Deskstream] Assigned to you: Printer on fire",
            '[Deskstream] Your ticket "Printer on fire" is now Assigned',
            '[Deskstream] New reply on "Printer on fire"',
            '[Deskstream] Your ticket "Printer on fire" is now Resolved',
        ]
    )
    assert wiring.sweep(at=later + timedelta(hours=2)) == 0


@pytest.mark.django_db(transaction=True)
def test_the_live_projector_enqueues_after_its_commit(story: dict[str, Any]) -> None:
    tid = story["ticket"]
    project()  # eager Celery: on_commit -> task -> file outbox
    assert [s for _, _, s in rows(tid)] == ["sent"] * 4


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_sends_nothing_again_and_keeps_read_marks(
    story: dict[str, Any], api: Callable[..., Any]
) -> None:
    tid = story["ticket"]
    project()
    assert [s for _, _, s in rows(tid)] == ["sent"] * 4
    _, client = api(user=story["customer"])
    first = client.get("/api/notifications").json()["results"][0]
    assert client.post(f"/api/notifications/{first['id']}/read").status_code == 200
    outbox_before = list(NotificationOutboxRecord.objects.order_by("id").values())
    in_app_before = in_app(tid)
    files_before = len(FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR).entries())

    rebuild(event_source(), store(n.NAME), store(n.NAME).shadow, store(n.NAME).swap_in)

    assert list(NotificationOutboxRecord.objects.order_by("id").values()) == outbox_before
    assert in_app(tid) == in_app_before
    assert len(FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR).entries()) == files_before
    again = client.get("/api/notifications").json()
    assert again["results"][0] == {**first, "read": True}


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_e_mails_only_what_the_live_projector_had_not_reached(
    make_user: Callable[..., Any],
) -> None:
    app = get_application()
    skip_history()
    customer, ada, bob = make_user("customer"), make_user("agent"), make_user("agent")
    tid = app.open_ticket(
        as_actor(customer), customer_id=str(customer.pk), subject="S", description=""
    ).id
    app.assign_ticket(tid, as_actor(bob), agent_id=str(ada.pk))
    project()  # live: assigned (Ada), status (customer): 2 e-mails, sent
    app.post_message(tid, as_actor(ada), body="Hi")  # the live projector has not seen this
    rebuild(event_source(), store(n.NAME), store(n.NAME).shadow, store(n.NAME).swap_in)
    # The rebuild's swap moved the live projector past the reply: the rebuild owed its e-mail.
    assert rows(tid) == [
        (str(ada.pk), "assigned", "sent"),
        (str(customer.pk), "status_changed", "sent"),
        (str(customer.pk), "public_reply", "sent"),
    ]
    assert store(n.NAME).position() == event_source().head()


# ------------------------------------------------------------------------------ the APIs
def test_the_notification_list_read_marks_and_unread_count(
    story: dict[str, Any], api: Callable[..., Any]
) -> None:
    _, customer = api(user=story["customer"])
    _, ada = api(user=story["ada"])
    response = customer.get("/api/notifications")
    body = response.json()
    assert response["X-Unread-Count"] == "3"
    assert body["unread_count"] == 3
    assert [(r["kind"], r["read"], r["payload"].get("to_status")) for r in body["results"]] == [
        ("status_changed", False, "resolved"),
        ("public_reply", False, None),
        ("status_changed", False, "assigned"),
    ]
    reply = body["results"][1]
    assert reply["ticket_id"] == str(story["ticket"])
    assert reply["payload"]["excerpt"] == "Which printer?\nThe <big> one?"
    assert set(reply) == {"id", "kind", "ticket_id", "payload", "read", "created_at", "position"}

    # Someone else's notification, or no such id: 404, and nothing changes.
    ada_first = ada.get("/api/notifications").json()["results"][0]
    assert customer.post(f"/api/notifications/{ada_first['id']}/read").status_code == 404
    assert customer.post("/api/notifications/not-a-uuid/read").status_code == 404
    assert ada.get("/api/notifications").json()["unread_count"] == 3

    marked = customer.post(f"/api/notifications/{reply['id']}/read")
    assert marked.status_code == 200
    assert marked.json() == {"id": reply["id"], "read": True, "unread_count": 2}
    assert customer.post(f"/api/notifications/{reply['id']}/read").json()["unread_count"] == 2
    unread = customer.get("/api/notifications?unread=1").json()
    assert [r["id"] for r in unread["results"]] == [
        body["results"][0]["id"],
        body["results"][2]["id"],
    ]

    # read-all up to a position: only what the client had shown.
    oldest = body["results"][2]
    result = customer.post(
        "/api/notifications/read-all", {"position": oldest["position"]}, format="json"
    )
    assert result.json() == {"marked": 1, "unread_count": 1}
    assert customer.post("/api/notifications/read-all", {}, format="json").json() == {
        "marked": 1,
        "unread_count": 0,
    }
    assert (
        customer.post("/api/notifications/read-all", {"position": "x"}, format="json").status_code
        == 400
    )
    assert ada.get("/api/notifications").json()["unread_count"] == 3  # Ada's are hers


def test_the_list_waits_for_the_projector_with_after(
    story: dict[str, Any], api: Callable[..., Any]
) -> None:
    from rest_framework.test import APIClient

    _, projecting = api(user=story["customer"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=projecting._credentials["HTTP_AUTHORIZATION"])
    head = event_source().head()
    response = client.get(f"/api/notifications?after={head}")  # nobody projects: stale
    assert response["X-Deskstream-Stale"] == "true"
    project()
    response = client.get(f"/api/notifications?after={head}")
    assert "X-Deskstream-Stale" not in response
    assert response["X-Deskstream-Position"] == str(head)


def test_email_templates_are_admin_only_validated_and_used(
    story: dict[str, Any], api: Callable[..., Any]
) -> None:
    _, admin = api(user=story["admin"])
    _, agent = api(user=story["ada"])
    listed = admin.get("/api/settings/email-templates")
    assert listed.status_code == 200
    assert [t["kind"] for t in listed.json()] == [
        "status_changed", "public_reply", "assigned", "sla_reminder", "sla_breached"
    ]  # fmt: skip
    assert all(t["is_default"] for t in listed.json())
    assert agent.get("/api/settings/email-templates").status_code == 403
    assert (
        agent.put("/api/settings/email-templates/public_reply", {}, format="json").status_code
        == 403
    )
    assert admin.get("/api/settings/email-templates/nope").status_code == 404

    bad = admin.put(
        "/api/settings/email-templates/public_reply",
        {
            "subject": "Re: ${ticket_subject} ${password}",
            "text_body": "{{ user.password }}",
            "html_body": "<p>${ broken</p>",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid"
    assert set(bad.json()["fields"]) == {"subject", "text_body", "html_body"}
    assert "Unknown placeholder(s): ${password}" in bad.json()["fields"]["subject"][0]
    assert (
        admin.put(
            "/api/settings/email-templates/public_reply", {"subject": "x"}, format="json"
        ).status_code
        == 400
    )

    good = admin.put(
        "/api/settings/email-templates/public_reply",
        {
            "subject": "Reply: ${ticket_subject}",
            "text_body": "${author_name}: ${message_excerpt}",
            "html_body": (
                "<p onclick='x()'><b>${author_name}</b>: ${message_excerpt}</p><script>x</script>"
            ),
        },
        format="json",
    )
    assert good.status_code == 200
    assert good.json()["html_body"] == "<p><b>${author_name}</b>: ${message_excerpt}</p>"
    assert good.json()["is_default"] is False
    assert good.json()["updated_by"] == str(story["admin"].pk)

    project()
    reply = NotificationOutboxRecord.objects.get(ticket_id=story["ticket"], kind="public_reply")
    recorder = Recorder()
    wiring.deliver(reply.id, recorder)
    [mail] = recorder.sent
    assert (mail.subject, mail.text) == (
        "Reply: Printer on fire",
        "Ada Lovelace: Which printer?\nThe <big> one?",
    )
    assert mail.html == "<p><b>Ada Lovelace</b>: Which printer?<br>\nThe &lt;big&gt; one?</p>"

    reset = admin.delete("/api/settings/email-templates/public_reply")
    assert reset.status_code == 200
    assert reset.json()["is_default"] is True


def test_the_outbox_endpoint_shows_what_was_sent(
    story: dict[str, Any], api: Callable[..., Any]
) -> None:
    project()
    reply = NotificationOutboxRecord.objects.get(ticket_id=story["ticket"], kind="public_reply")
    assert wiring.deliver(reply.id) == "sent"  # the configured sender: the (test) outbox
    _, admin = api(user=story["admin"])
    _, customer = api(user=story["customer"])
    listed = admin.get("/api/outbox?limit=1000").json()
    assert listed["enabled"] is True
    entry = next(
        e
        for e in listed["results"]
        if e["message_id"] == f"<{reply.notification_id}@deskstream.test>"
    )
    assert entry["to"] == f"Maria Garcia <{story['customer'].email}>"
    assert entry["subject"] == '[Deskstream] New reply on "Printer on fire"'
    shown = admin.get(f"/api/outbox/{entry['name']}").json()
    assert (
        shown["text"]
        .replace("\r\n", "\n")
        .startswith("Hello Maria Garcia,\n\nAda Lovelace replied")
    )
    assert "<blockquote>Which printer?<br>\nThe &lt;big&gt; one?</blockquote>" in shown["html"]
    assert customer.get("/api/outbox").status_code == 403
    assert admin.get("/api/outbox/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert admin.get("/api/outbox/missing.eml").status_code == 404
    assert admin.get("/api/outbox?limit=0").status_code == 400


def test_an_e_mail_names_its_people_from_one_read_of_them(
    story: dict[str, Any], django_assert_num_queries: Any
) -> None:
    """``compose`` reads the recipient and the people it names in one query: the same
    names as reading each (a user's display name, nothing for no id, the system's name for
    an id that names no user), and no e-mail for a missing or inactive recipient."""
    from processes import notifications as delivery
    from processes.notifications import SYSTEM_NAME

    customer, ada = story["customer"], story["ada"]

    def row(recipient: str, **payload: str) -> outbox.OutboxRow:
        return outbox.OutboxRow(
            1, UUID(int=1), 1, recipient, "status_changed", story["ticket"], payload, 0
        )

    cases = [
        (
            {"customer_id": str(customer.pk), "actor_id": str(ada.pk)},
            "Maria Garcia",
            "Ada Lovelace",
        ),
        (
            {"customer_id": str(customer.pk), "actor_id": str(customer.pk)},
            "Maria Garcia",
            "Maria Garcia",
        ),
        ({"customer_id": str(customer.pk), "actor_id": "999999999"}, "Maria Garcia", SYSTEM_NAME),
        ({"customer_id": "", "actor_id": "automation"}, "", SYSTEM_NAME),
        ({}, "", ""),
    ]
    for payload, customer_name, actor_name in cases:
        with django_assert_num_queries(2):  # the people, then the kind's template
            email = delivery.compose(row(str(ada.pk), **payload))
        assert email is not None
        assert email.to_name == "Ada Lovelace"
        names = delivery._users(str(ada.pk), payload.get("customer_id"), payload.get("actor_id"))
        assert delivery._name(names, payload.get("customer_id")) == customer_name
        assert delivery._name(names, payload.get("actor_id")) == actor_name
    assert delivery.compose(row("999999999", actor_id=str(ada.pk))) is None
    assert delivery.compose(row("", actor_id=str(ada.pk))) is None
    ada.is_active = False
    ada.save()
    assert delivery.compose(row(str(ada.pk), actor_id=str(customer.pk))) is None
