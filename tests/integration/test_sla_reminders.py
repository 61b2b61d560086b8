"""SLA reminders, breach notifications, the ticket's e-mail log and satisfaction ratings
(ADR 0047) against the real store, a real SMTP server (aiosmtpd on loopback) and the API.

The SLA check runs with an injected "now"; reminders are decided from ``rm_sla`` (the log),
so a new check (a restarted process) neither repeats nor loses one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from rest_framework.test import APIClient

from command_api.application import get_application
from config import bootstrap
from config.bootstrap import now, runner
from domain.ticket import Ticket
from infra.email.smtp import SmtpEmailSender, SmtpSettings
from infra.postgres.models import NotificationOutboxRecord, NotificationRecord
from processes import notifications as delivery
from processes.sla import SlaCheck
from projections import notifications as n
from tests.conftest import free_port, project_all
from tests.integration.test_notifications import as_actor, skip_history
from tests.integration.test_sla import clock_rules, opened_at  # noqa: F401 - a fixture
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port()).start()
    yield sink
    sink.stop()


def send_all(ticket_id: UUID, smtp: SmtpSink) -> dict[int, str]:
    """Deliver every pending e-mail of the ticket over SMTP; outbox id -> outcome."""
    runner(n.NAME).catch_up()
    sender = SmtpEmailSender(SmtpSettings("127.0.0.1", smtp.port))
    pending = NotificationOutboxRecord.objects.filter(ticket_id=ticket_id, status="pending")
    return {row.id: delivery.deliver(row.id, sender) for row in pending.order_by("id")}


def reminders(tid: UUID) -> list[Ticket.SlaReminderDue]:
    events = get_application().ticket_events(tid)
    return [e for e in events if isinstance(e, Ticket.SlaReminderDue)]


@pytest.fixture
def desk(clock_rules: Any, api: Any) -> dict[str, Any]:  # noqa: F811
    """High priority (60 min to the first reply, 240 to resolution, round the clock), a
    ticket assigned to Ada, who chose SLA e-mails; reminders 30 min before."""
    skip_history()
    admin, admin_api = api("admin")
    ada, ada_api = api("agent")
    customer, customer_api = api("customer")
    answer = admin_api.put("/api/settings/sla-reminders", {"minutes_before": 30}, format="json")
    assert answer.status_code == 200, answer.json()
    assert ada_api.put("/api/me/email-preferences", {"sla_emails": True},
                       format="json").json() == {"sla_emails": True}  # fmt: skip
    app = get_application()
    tid = app.open_ticket(as_actor(customer), customer_id=str(customer.pk), subject="Down",
                          description="", priority="high").id  # fmt: skip
    app.assign_ticket(tid, as_actor(admin), agent_id=str(ada.pk))
    project_all()
    return {
        "ticket": tid, "t0": opened_at(tid), "admin": admin, "admin_api": admin_api,
        "ada": ada, "ada_api": ada_api, "customer": customer, "customer_api": customer_api,
    }  # fmt: skip


def test_a_reminder_is_recorded_once_per_deadline_even_across_restarts_and_e_mailed(
    desk: dict[str, Any], smtp: SmtpSink
) -> None:
    tid, t0, ada = desk["ticket"], desk["t0"], desk["ada"]
    due = t0 + 60 * MIN
    assert bootstrap.check_sla(due - 31 * MIN).reminded == 0  # not yet
    result = bootstrap.check_sla(due - 29 * MIN)
    assert (result.reminded, result.failed) == (1, 0)
    (event,) = reminders(tid)
    assert (event.target, event.deadline, event.minutes_before) == ("first_response", due, 30)
    # Again, before and after the projector caught up, and from a new check (a restart).
    bootstrap.check_sla(due - 28 * MIN)
    project_all()
    restarted = SlaCheck(get_application, now)
    assert restarted(due - 27 * MIN).reminded == 0
    assert len(reminders(tid)) == 1
    # The assigned agent is told in the app, and by e-mail (she chose it).
    runner(n.NAME).catch_up()
    assert list(
        NotificationRecord.objects.filter(ticket_id=tid, kind=n.SLA_REMINDER).values_list(
            "user_id", flat=True
        )
    ) == [str(ada.pk)]
    smtp.clear()
    outcomes = send_all(tid, smtp)
    assert list(outcomes.values()).count("sent") >= 1
    (mail,) = [r for r in smtp.wait_for(1) if r.message["X-Deskstream-Kind"] == "sla_reminder"]
    assert mail.rcpt_tos == (ada.email,)
    assert "first response due soon: Down" in mail.message["Subject"]
    # Staff see the e-mails of the ticket; customers do not.
    log = desk["ada_api"].get(f"/api/tickets/{tid}/emails").json()["results"]
    sent = [e for e in log if e["kind"] == "sla_reminder"]
    assert [(e["recipient_email"], e["status"]) for e in sent] == [(ada.email, "sent")]
    assert sent[0]["sent_at"] is not None
    assert desk["customer_api"].get(f"/api/tickets/{tid}/emails").status_code == 403
    assert desk["ada_api"].get(f"/api/tickets/{UUID(int=7)}/emails").status_code == 404
    # Customers never see the reminder in the history; staff do.
    types = [e["type"] for e in desk["customer_api"].get(f"/api/tickets/{tid}/history").json()
             ["events"]]  # fmt: skip
    assert "SlaReminderDue" not in types
    staff = [e["type"] for e in desk["ada_api"].get(f"/api/tickets/{tid}/history").json()["events"]]
    assert "SlaReminderDue" in staff


def test_an_answered_or_paused_ticket_gets_no_reminder_and_a_pending_one_is_cancelled(
    desk: dict[str, Any], smtp: SmtpSink
) -> None:
    tid, t0, ada = desk["ticket"], desk["t0"], desk["ada"]
    app = get_application()
    bootstrap.check_sla(t0 + 31 * MIN)
    assert len(reminders(tid)) == 1
    runner(n.NAME).catch_up()
    # Ada answers before the e-mail goes out: it is cancelled (skipped with the reason).
    app.post_message(tid, as_actor(ada), body="On it")
    project_all()
    send_all(tid, smtp)
    row = NotificationOutboxRecord.objects.get(ticket_id=tid, kind=n.SLA_REMINDER)
    assert (row.status, row.last_error) == (
        "skipped", "cancelled: the target was met or its clock stopped")  # fmt: skip
    # Waiting on the customer stops the clock: no resolution reminder however late.
    app.change_status(tid, as_actor(ada), status="in_progress")
    app.change_status(tid, as_actor(ada), status="waiting_on_customer")
    project_all()
    assert bootstrap.check_sla(t0 + 239 * MIN).reminded == 0
    assert len(reminders(tid)) == 1


def test_reminder_e_mails_only_for_agents_who_chose_them(
    desk: dict[str, Any], smtp: SmtpSink
) -> None:
    tid, t0 = desk["ticket"], desk["t0"]
    assert desk["ada_api"].put("/api/me/email-preferences", {"sla_emails": False},
                               format="json").status_code == 200  # fmt: skip
    assert desk["ada_api"].get("/api/me/email-preferences").json() == {"sla_emails": False}
    bootstrap.check_sla(t0 + 31 * MIN)
    send_all(tid, smtp)
    row = NotificationOutboxRecord.objects.get(ticket_id=tid, kind=n.SLA_REMINDER)
    assert (row.status, row.last_error) == ("skipped", "the agent has not chosen SLA e-mails")
    assert NotificationRecord.objects.filter(ticket_id=tid, kind=n.SLA_REMINDER).count() == 1


def test_a_breach_tells_the_agent_and_every_admin(desk: dict[str, Any], api: Any) -> None:
    tid, t0 = desk["ticket"], desk["t0"]
    assert bootstrap.check_sla(t0 + 61 * MIN).recorded == 1
    _, other_admin = api("admin")
    _, other_agent = api("agent")
    for client, expected in ((desk["ada_api"], True), (desk["admin_api"], True),
                             (other_admin, True), (other_agent, False),
                             (desk["customer_api"], False)):  # fmt: skip
        listed = client.get("/api/notifications").json()["results"]
        kinds = [x["kind"] for x in listed if x["ticket_id"] == str(tid)]
        assert (n.SLA_BREACHED in kinds) is expected, (client, kinds)
    # An admin marks the admins' notification read for themselves only.
    shared = next(x for x in desk["admin_api"].get("/api/notifications").json()["results"]
                  if x["kind"] == n.SLA_BREACHED)  # fmt: skip
    assert desk["admin_api"].post(f"/api/notifications/{shared['id']}/read").status_code == 200
    again = other_admin.get("/api/notifications").json()["results"]
    assert next(x for x in again if x["id"] == shared["id"])["read"] is False


def test_reminder_settings_and_preferences_are_checked(api: Any) -> None:
    _, agent = api("agent")
    _, customer = api("customer")
    _, admin = api("admin")
    assert agent.get("/api/settings/sla-reminders").status_code == 403
    assert agent.put("/api/settings/sla-reminders", {"minutes_before": 5},
                     format="json").status_code == 403  # fmt: skip
    assert admin.get("/api/settings/sla-reminders").json() == {"minutes_before": 30}
    for body, field in (({"minutes_before": -1}, "minutes_before"),
                        ({"minutes_before": "5"}, "minutes_before"),
                        ({"minutes_before": 5, "x": 1}, "x")):  # fmt: skip
        answer = admin.put("/api/settings/sla-reminders", body, format="json")
        assert answer.status_code == 400
        assert field in answer.json()["fields"]
    assert admin.put("/api/settings/sla-reminders", {"minutes_before": 0},
                     format="json").json() == {"minutes_before": 0}  # fmt: skip
    assert customer.get("/api/me/email-preferences").status_code == 403
    assert customer.put("/api/me/email-preferences", {"sla_emails": True},
                        format="json").status_code == 403  # fmt: skip
    bad = agent.put("/api/me/email-preferences", {"sla_emails": "maybe"}, format="json")
    assert bad.status_code == 400
    assert "sla_emails" in bad.json()["fields"]


# ---------------------------------------------------------------------------- satisfaction
def rating_link(smtp: SmtpSink, to: str) -> tuple[str, str]:
    """The token and URL of the 5-star link in the resolution e-mail to ``to``."""
    for received in reversed(smtp.wait_for(1)):
        if received.rcpt_tos == (to,) and "resolved" in received.message["Subject"].lower():
            body = received.message.get_body(("plain",))
            assert body is not None
            text = body.get_content()
            url = re.findall(r"5 - (\S+)", text)[0]
            return parse_qs(urlsplit(url).query)["token"][0], url
    raise AssertionError("no resolution e-mail")


def test_the_customer_rates_from_the_e_mail_link_once_and_in_the_app(
    desk: dict[str, Any], smtp: SmtpSink, settings: Any
) -> None:
    tid, customer, ada = desk["ticket"], desk["customer"], desk["ada"]
    app = get_application()
    customer_api = desk["customer_api"]
    # Not before it is resolved.
    early = customer_api.post(f"/api/tickets/{tid}/satisfaction", {"rating": 5}, format="json")
    assert early.status_code == 400
    assert "rating" in early.json()["fields"]
    app.post_message(tid, as_actor(ada), body="Fixed")
    app.change_status(tid, as_actor(ada), status="resolved")
    smtp.clear()
    send_all(tid, smtp)
    token, url = rating_link(smtp, customer.email)
    assert url.startswith(f"{settings.PUBLIC_URL}/rate?")
    anonymous = APIClient()
    about = anonymous.get("/api/satisfaction/link", {"token": token}).json()
    assert (about["subject"], about["rateable"], about["rating"]) == ("Down", True, None)
    first = anonymous.post("/api/satisfaction/link", {"token": token, "rating": 5}, format="json")
    assert first.status_code == 200
    assert first.json()["position"] is not None
    replay = anonymous.post("/api/satisfaction/link", {"token": token, "rating": 5}, format="json")
    assert replay.status_code == 200
    assert replay.json()["position"] is None
    rated = [e for e in app.ticket_events(tid) if isinstance(e, Ticket.SatisfactionRated)]
    assert [(e.rating, e.channel, e.actor_id) for e in rated] == [(5, "email", str(customer.pk))]
    # A changed or foreign token is refused, naming the field; so is an expired one.
    for bad in (token[:-2] + "xx", "nonsense", ""):
        answer = anonymous.post("/api/satisfaction/link", {"token": bad, "rating": 1},
                                format="json")  # fmt: skip
        assert answer.status_code == 400, bad
        assert "token" in answer.json()["fields"], bad
    settings.CSAT_LINK_DAYS = -1
    expired = anonymous.post("/api/satisfaction/link", {"token": token, "rating": 1},
                             format="json")  # fmt: skip
    assert expired.status_code == 400
    assert expired.json()["fields"]["token"] == ["The link has expired."]
    settings.CSAT_LINK_DAYS = 14
    # In the app: the customer changes it and adds a comment; staff may not rate.
    assert desk["ada_api"].post(f"/api/tickets/{tid}/satisfaction", {"rating": 1},
                                format="json").status_code == 403  # fmt: skip
    bad = customer_api.post(f"/api/tickets/{tid}/satisfaction", {"rating": 9}, format="json")
    assert bad.status_code == 400
    assert "rating" in bad.json()["fields"]
    ok = customer_api.post(f"/api/tickets/{tid}/satisfaction",
                           {"rating": 4, "comment": "Quick, thanks"}, format="json")  # fmt: skip
    assert ok.status_code == 200
    for client in (customer_api, desk["ada_api"]):
        body = client.get(f"/api/tickets/{tid}").json()
        assert (body["satisfaction_rating"], body["satisfaction_comment"]) == (4, "Quick, thanks")
        history = client.get(f"/api/tickets/{tid}/history").json()["events"]
        assert [e["type"] for e in history].count("SatisfactionRated") == 2
