"""The admin console in headless Chromium against a real server: each page's main action
(invite and deactivate an agent, create a team and add a member, filter the audit and
export it as CSV, rebuild a projector with its progress, edit an e-mail template with its
live preview, open a customer's profile), and that agents get no admin section.

Uses the harness of ``test_web.py`` (its server, browser and sign-in).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import LiveServer, create_user
from tests.e2e.test_web import (  # noqa: F401 - fixtures
    browser,
    expect,
    open_page,
    shot,
    sign_in,
    web_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people(django_db_setup: Any, django_db_blocker: Any) -> dict[str, Any]:
    """Committed users (and a ticket) made before the browser starts."""
    from command_api.application import Actor, get_application
    from domain.lifecycle import Role

    with django_db_blocker.unblock():
        customer = create_user("customer", company="Acme Rockets")
        subject = f"Rocket stuck {uuid.uuid4().hex[:6]}"
        get_application().open_ticket(
            Actor(str(customer.pk), Role.CUSTOMER),
            customer_id=str(customer.pk),
            subject=subject,
            description="on the pad",
        )
        return {
            "admin": create_user("admin"),
            "agent": create_user("agent"),
            "leaving": create_user("agent"),
            "customer": customer,
            "subject": subject,
        }


def test_admin_console_main_actions(
    people: dict[str, Any],
    browser: Any,  # noqa: F811
    web_server: LiveServer,  # noqa: F811
    shot: Any,  # noqa: F811
) -> None:
    page = open_page(browser, web_server)
    sign_in(page, people["admin"].email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()

    # Agents: invite one; deactivate another.
    invited = f"invited-{uuid.uuid4().hex[:8]}@example.test"
    form = page.get_by_role("form", name="Invite an agent")
    form.get_by_label("E-mail").fill(invited)
    form.get_by_label("Name").fill("Ivy Invited")
    form.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("cell", name=re.compile("Ivy Invited"))).to_be_visible()
    leaving = page.get_by_test_id(f"agent-{people['leaving'].pk}")
    leaving.get_by_role("button", name="Deactivate").click()
    expect(leaving.get_by_role("button", name="Reactivate")).to_be_visible()
    shot(page, "admin-agents")

    # Teams: create one and add a member.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Teams").click()
    team = f"Escalations {uuid.uuid4().hex[:4]}"
    page.get_by_label("Team name").fill(team)
    page.get_by_role("button", name="Create team").click()
    card = page.get_by_role("region", name=f"Team {team}")
    agent_name = people["agent"].display_name
    card.get_by_label(f"Add a member to {team}").select_option(label=agent_name)
    card.get_by_role("button", name="Add member").click()
    expect(card.get_by_role("button", name=f"Remove {agent_name}")).to_be_visible()
    shot(page, "admin-teams")

    # Audit: the invitation is there with who did it; the CSV export downloads.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit").click()
    page.get_by_label("Event type").select_option("ChangeRecorded")
    # The actor field offers the staff by name (a datalist whose values are their ids).
    expect(
        page.get_by_test_id("audit-actors").locator(f"option[value='{people['admin'].pk}']")
    ).to_contain_text(people["admin"].display_name)
    page.get_by_label("Actor (user id)").fill(str(people["admin"].pk))
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("audit").get_by_text("agent.invited")).to_be_visible()
    expect(page.get_by_test_id("audit").get_by_text("agent.deactivated")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    csv_text = open(download.value.path(), encoding="utf-8").read()  # noqa: PTH123, SIM115
    assert csv_text.startswith("position,time,type,")
    assert "agent.invited" in csv_text
    shot(page, "admin-audit")

    # Projections: rebuild one from the page and watch it finish.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Projections").click()
    expect(
        page.get_by_test_id("projectors").get_by_role("cell", name="sla", exact=True)
    ).to_be_visible()
    page.get_by_role("button", name="Rebuild sla").click()
    rebuild = page.get_by_test_id("rebuilds").get_by_role("listitem").first
    expect(rebuild).to_contain_text("sla")
    expect(rebuild).to_contain_text("done")
    shot(page, "admin-projections")

    # Settings: the e-mail template's live preview follows the draft.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Settings").click()
    editor = page.get_by_role("region", name="E-mail templates")
    editor.get_by_label("Subject", exact=True).fill("Update on ${ticket_subject}")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Update on Printer on fire")
    shot(page, "admin-settings")

    # Settings: a rate limit changed on the page is stored (a reload reads it back).
    limits = page.get_by_role("form", name="Rate limits")
    limits.get_by_label("Search: per user").fill("77")
    limits.get_by_role("button", name="Save rate limits").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    page.reload()
    expect(
        page.get_by_role("form", name="Rate limits").get_by_label("Search: per user")
    ).to_have_value("77")

    # Customers: the directory leads to the profile with the customer's tickets.
    page.goto(f"/admin/customers/{people['customer'].pk}")
    expect(page.get_by_text("Acme Rockets")).to_be_visible()
    expect(
        page.get_by_test_id("customer-tickets").get_by_role("link", name=people["subject"])
    ).to_be_visible()
    shot(page, "admin-customer")

    # The ticket page: route the customer's ticket to the team made above, then read it back.
    page.get_by_test_id("customer-tickets").get_by_role("link", name=people["subject"]).click()
    page.get_by_test_id("team-select").select_option(label=team)
    page.get_by_role("button", name="Apply team").click()
    expect(page.get_by_text(f"Routed to {team}")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("team-select").locator("option:checked")).to_have_text(team)
    page.context.close()


def test_agents_get_no_admin_section(
    people: dict[str, Any],
    browser: Any,  # noqa: F811
    web_server: LiveServer,  # noqa: F811
) -> None:
    page = open_page(browser, web_server)
    sign_in(page, people["agent"].email)
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_have_count(0)
    page.goto("/admin/agents")
    expect(page).to_have_url(re.compile(r"/agent$"))  # sent to the desk
    expect(page.get_by_role("navigation", name="Admin")).to_have_count(0)
    page.context.close()
