"""SLA reminders and breaches, the ticket's e-mails and satisfaction ratings (issue 20, ADR
0047) in headless Chromium against a real server, with an axe-core check of every page.

The SLA check runs as ``manage.py sla check --now`` (as cron would run it) with a time just
before and just after the ticket's deadline, so the test needs no clock of its own. E-mails
go to the server's local outbox (a directory of this test's own), where the resolution
e-mail's signed rating link is read back and opened without signing in.

The module sorts after the other web tests: its checks run over the whole test database.
"""

# ruff: noqa: F811

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, LiveServer, create_user, start_server, subprocess_database_url
from tests.e2e.test_web import (  # noqa: F401  (fixtures shared with the web tests)
    TIMEOUT_MS,
    agent,
    browser,
    customer_email,
    expect,
    shot,
    sign_in,
)
from tests.e2e.test_web_workspace import accessible, create_ticket, open_page


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outbox")


@pytest.fixture(scope="module")
def sla_server(django_db_setup: Any, outbox: Path) -> Iterator[LiveServer]:
    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        pytest.fail(f"the web app could not be built: {problem}")
    server = start_server(
        {
            "DESKSTREAM_EMAIL_OUTBOX": "1",
            "DESKSTREAM_EMAIL_OUTBOX_DIR": str(outbox),
            "DESKSTREAM_CELERY_EAGER": "1",
            "DESKSTREAM_SLA_CHECK_INTERVAL": "3600",  # only the test's checks
        }
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(django_db_setup: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        return create_user("admin")


def manage(*args: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DESKSTREAM_DEMO": "1",  # as the server (start_server): its settings
        "DESKSTREAM_DB_POOL_SIZE": "2",
    }
    env.pop("PYTEST_VERSION", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def set_known_rules() -> None:
    """Round-the-clock hours and the default targets, written by a process of its own (this
    one runs the browser's event loop): the suite's other tests (schemathesis above all) leave
    any rules behind, e.g. a resolution target as near as the first reply's, which would make
    the first check remind of both."""
    code = (
        "from infra.automation.models import BusinessCalendarSetting, SlaPolicySetting\n"
        "week = {d: [['00:00', '24:00']] for d in "
        "('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')}\n"
        "BusinessCalendarSetting.objects.update_or_create(id=1, defaults={'time_zone': 'UTC', "
        "'weekly_hours': week, 'holidays': []})\n"
        "for p, first, resolution in [('low', 1440, 4320), ('medium', 480, 2880), "
        "('high', 240, 1440), ('urgent', 60, 480)]:\n"
        "    SlaPolicySetting.objects.update_or_create(priority=p, defaults={"
        "'first_response_minutes': first, 'resolution_minutes': resolution})\n"
    )
    manage("shell", "-c", code)


def first_response_due(ticket_id: str) -> datetime:
    """The deadline the server's SLA projector computed (polled until it has the ticket)."""
    code = (
        "from infra.postgres.models import SlaRecord\n"
        f"row = SlaRecord.objects.filter(ticket_id={str(uuid.UUID(ticket_id))!r}).first()\n"
        "print(row.first_response_due.isoformat() if row and row.first_response_due else '')\n"
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # The shell may print a banner first ("46 objects imported ..."): the ISO line counts.
        found = re.findall(r"^\d{4}-\d\d-\d\dT\S+$", manage("shell", "-c", code), re.MULTILINE)
        if found:
            return datetime.fromisoformat(found[-1])
        time.sleep(0.5)
    raise AssertionError("the SLA projector never had the ticket")


def rating_url(outbox: Path, to: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in outbox.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if to in str(message["To"]) and "Resolved" in str(message["Subject"]):
                body = message.get_body(("plain",))
                assert body is not None
                found = re.findall(r"2 - (\S+)", body.get_content())  # type: ignore[attr-defined]
                if found:
                    return str(found[0])
        time.sleep(0.3)
    raise AssertionError("no resolution e-mail with rating links")


def test_reminders_breaches_e_mails_and_ratings_in_the_browser(
    agent: Any, admin: Any, browser: Any, sla_server: LiveServer, outbox: Path, shot: Any
) -> None:
    set_known_rules()
    word = uuid.uuid4().hex[:8]
    customer_address = customer_email()
    customer = open_page(browser, sla_server)
    sign_in(customer, customer_address)
    path = create_ticket(customer, f"VPN down {word}", "No connection since 8:00")
    ticket_id = path.rsplit("/", 1)[1]

    # The admin sets the reminder time (45 minutes before a deadline).
    boss = open_page(browser, sla_server)
    sign_in(boss, admin.email)
    boss.goto("/admin/settings")
    minutes = boss.get_by_test_id("sla-reminder-minutes")
    expect(minutes).to_have_value(re.compile(r"^\d+$"))  # what the suite's other tests left
    minutes.fill("45")
    boss.get_by_role("button", name="Save reminders").click()
    expect(boss.get_by_test_id("toasts")).to_contain_text("Saved.")
    accessible(boss, "settings (admin)")
    boss.goto("/agent")

    # The agent takes the ticket and chooses SLA e-mails.
    desk = open_page(browser, sla_server)
    sign_in(desk, agent.email)
    desk.goto(path)
    expect(desk.get_by_test_id("ticket-subject")).to_have_text(f"VPN down {word}")
    desk.locator("body").press("a")
    expect(desk.get_by_test_id("assignee")).to_have_text(f"Agent: {agent.first_name}")
    desk.get_by_test_id("notification-bell").click()
    choice = desk.get_by_test_id("sla-email-choice")
    expect(choice).to_be_enabled()  # the preference has loaded
    expect(choice).not_to_be_checked()
    choice.check()
    expect(choice).to_be_checked()
    accessible(desk, "notification panel (agent)")
    desk.get_by_test_id("notification-bell").click()

    # 44 minutes before the deadline: a reminder, live in the app, and an e-mail.
    due = first_response_due(ticket_id)
    manage("sla", "check", "--now", (due - timedelta(minutes=44)).isoformat())
    expect(desk.get_by_test_id("toasts")).to_contain_text("First response due soon")
    desk.get_by_test_id("notification-bell").click()
    expect(desk.locator("#notification-panel")).to_contain_text("First response due soon on")
    desk.get_by_test_id("notification-bell").click()
    # The same check again (a restart, a second scheduler): nothing new.
    manage("sla", "check", "--now", (due - timedelta(minutes=43)).isoformat())
    desk.reload()
    emails = desk.get_by_test_id("ticket-emails")
    reminder = emails.locator("li", has_text="SLA reminder")
    expect(reminder).to_have_count(1)
    expect(reminder).to_contain_text(agent.email)
    expect(reminder.get_by_test_id("email-status")).to_contain_text("Sent")
    accessible(desk, "ticket with e-mails (agent)")
    shot(desk, "ticket-sla-reminder-emails")

    # Past the deadline: a breach, live for the agent and for the admin (staff frame).
    # A toast lasts six seconds: both pages' toasts are checked before anything slow (the
    # axe check takes seconds on a busy machine); the notification panels keep the breach.
    # The agent's comes from the notification projector, which on a loaded machine has
    # taken longer than the default 20 s to reach it (a clean-clone run): a minute each.
    manage("sla", "check", "--now", (due + timedelta(minutes=1)).isoformat())
    expect(boss.get_by_test_id("toasts")).to_contain_text("SLA breached", timeout=60_000)
    expect(desk.get_by_test_id("toasts")).to_contain_text("SLA breached", timeout=60_000)
    boss.get_by_test_id("notification-bell").click()
    expect(boss.locator("#notification-panel")).to_contain_text("SLA breached: First response")
    accessible(boss, "notification panel (admin)")
    desk.get_by_test_id("notification-bell").click()
    expect(desk.locator("#notification-panel")).to_contain_text("SLA breached: First response")
    desk.get_by_test_id("notification-bell").click()
    # Customers never see e-mails of staff, nor the SLA bookkeeping.
    customer.reload()
    expect(customer.get_by_role("heading", name="E-mails")).to_have_count(0)
    expect(customer.get_by_test_id("toasts")).not_to_contain_text("SLA")

    # The agent answers and resolves: the customer rates in the app.
    desk.get_by_label("Reply").fill(f"Fixed the tunnel {word}")
    desk.get_by_label("Reply").press("Control+Enter")
    expect(customer.locator(".messages")).to_contain_text(f"Fixed the tunnel {word}")
    for status in ("in_progress", "resolved"):
        desk.get_by_test_id("status-select").select_option(status)
        desk.get_by_role("button", name="Apply status").click()
    expect(desk.get_by_test_id("status-badge")).to_have_text("Resolved")
    expect(customer.get_by_test_id("status-badge")).to_have_text("Resolved")
    expect(customer.get_by_role("heading", name="How did we do?")).to_be_visible()
    accessible(customer, "rating form (customer)")
    customer.get_by_role("radio", name="4: Very good").check()
    customer.get_by_label("Comment (optional)").fill("Quick and clear")
    customer.get_by_role("button", name="Send rating").click()
    expect(customer.get_by_test_id("csat-value")).to_contain_text("4: Very good")
    expect(customer.get_by_test_id("csat-comment")).to_have_text("Quick and clear")
    shot(customer, "ticket-satisfaction")
    desk.reload()
    expect(desk.get_by_test_id("csat-value")).to_contain_text("4: Very good")
    status_mail = desk.get_by_test_id("ticket-emails").locator("li", has_text="Status change")
    expect(status_mail.first).to_contain_text(customer_address)

    # The resolution e-mail's one-click link works without signing in, and twice.
    link = rating_url(outbox, customer_address)
    stranger = browser.new_context(base_url=sla_server.url, bypass_csp=True)
    stranger.set_default_timeout(TIMEOUT_MS)
    visitor = stranger.new_page()
    local = urlsplit(link)
    visitor.goto(f"{local.path}?{local.query}")
    expect(visitor.get_by_role("heading", name="Thank you for your rating")).to_be_visible()
    expect(visitor.get_by_test_id("rate-saved")).to_contain_text("2: Fair")
    accessible(visitor, "rating page (link)")
    visitor.reload()
    expect(visitor.get_by_test_id("rate-saved")).to_contain_text("2: Fair")
    visitor.goto(f"{local.path}?token=forged&rating=5")
    expect(visitor.get_by_role("heading", name="This link does not work")).to_be_visible()
    stranger.close()
    customer.goto(path)
    expect(customer.get_by_test_id("csat-value")).to_contain_text("2: Fair")
    customer.goto(f"{path}/history")
    expect(customer.get_by_test_id("timeline")).to_contain_text("Rated 2 of 5")
    expect(customer.get_by_test_id("timeline")).not_to_contain_text("SLA reminder")
    for page in (customer, desk, boss):
        page.context.close()
