"""The API behind the agent's workspace (issue 20): one customer for the ticket sidebar, and
a history that names people instead of showing ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

pytestmark = pytest.mark.django_db


def open_ticket(client: Any) -> str:
    answer = client.post(
        "/api/tickets", {"subject": "Printer on fire", "description": "Smoke"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    return str(answer.json()["id"])


def test_staff_read_one_customer_with_profile_and_counts(api: Any) -> None:
    customer, c_client = api("customer")
    customer.last_name = "Hopper"
    customer.save()
    customer.customer_profile.company = "Navy"
    customer.customer_profile.phone = "+1 555 0100"
    customer.customer_profile.save()
    open_ticket(c_client)
    _, a_client = api("agent")
    answer = a_client.get(f"/api/customers/{customer.pk}")
    assert answer.status_code == 200
    assert answer.json() == {
        "id": customer.pk,
        "name": f"{customer.first_name} Hopper",
        "email": customer.email,
        "company": "Navy",
        "phone": "+1 555 0100",
        "open_tickets": 1,
        "total_tickets": 1,
    }


def test_customers_and_unknown_ids_get_errors_not_customers(api: Any) -> None:
    customer, c_client = api("customer")
    agent, a_client = api("agent")
    refused = c_client.get(f"/api/customers/{customer.pk}")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    for missing in ("999999999", "abc", "-1", "9" * 40, str(agent.pk)):  # an agent is no customer
        answer = a_client.get(f"/api/customers/{missing}")
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), missing


def test_history_names_the_people_and_customers_see_staff_by_name_only(api: Any) -> None:
    customer, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)
    a_client.post(f"/api/tickets/{tid}/assign", {"agent_id": agent.pk}, format="json")
    a_client.post(f"/api/tickets/{tid}/messages", {"body": "note", "internal": True}, format="json")

    staff = a_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assert staff[0]["actor"] == {
        "id": str(customer.pk),
        "role": "customer",
        "name": customer.first_name,
    }
    assigned = next(e for e in staff if e["type"] == "AgentAssigned")
    assert assigned["actor"]["name"] == agent.first_name
    assert assigned["data"]["agent_name"] == agent.first_name

    agent.first_name = ""
    agent.save()
    seen = c_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assert "MessagePosted" not in [e["type"] for e in seen]  # the internal note
    assigned = next(e for e in seen if e["type"] == "AgentAssigned")
    # A staff member without a name is "Support agent" to customers, never their e-mail.
    assert assigned["data"]["agent_name"] == "Support agent"
    assert agent.email not in str(seen)
    again = a_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assert next(e for e in again if e["type"] == "AgentAssigned")["data"]["agent_name"] == (
        agent.email
    )


def test_views_count_and_list_the_same_tickets(api: Any) -> None:
    _, c_client = api("customer")
    agent, a_client = api("agent")
    mine, waiting, unassigned = (open_ticket(c_client) for _ in range(3))
    for tid in (mine, waiting):
        a_client.post(f"/api/tickets/{tid}/assign", {"agent_id": agent.pk}, format="json")
    a_client.post(f"/api/tickets/{waiting}/status", {"status": "in_progress"}, format="json")
    a_client.post(
        f"/api/tickets/{waiting}/status", {"status": "waiting_on_customer"}, format="json"
    )

    counts = {v["id"]: v["count"] for v in a_client.get("/api/ticket-views").json()}
    assert list(counts) == ["mine", "unassigned", "waiting", "due_soon", "breached", "all"]
    listed = {}
    for view in counts:
        page = a_client.get("/api/tickets", {"view": view, "page_size": 100}).json()
        listed[view] = {t["id"] for t in page["results"]}
        while page.get("next"):  # earlier tests' tickets are there too: every page
            page = a_client.get(page["next"]).json()
            listed[view] |= {t["id"] for t in page["results"]}
        assert len(listed[view]) == counts[view], view  # one definition for both
    assert listed["mine"] == {mine, waiting}
    assert {waiting} <= listed["waiting"]
    assert {unassigned} <= listed["unassigned"]
    assert {mine, waiting} & listed["unassigned"] == set()
    assert {mine, waiting, unassigned} <= listed["all"]


def test_views_are_staffs_and_unknown_views_are_refused(api: Any) -> None:
    _, c_client = api("customer")
    _, a_client = api("agent")
    refused = c_client.get("/api/ticket-views")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    bad = a_client.get("/api/tickets", {"view": "everything"})
    assert bad.status_code == 400
    assert "view" in bad.json()["fields"]


def test_history_names_the_services_that_acted(api: Any) -> None:
    """Automatic assignment, SLA checks and the scanner act as ``Role.SYSTEM``: the history
    names them (staff and customers alike), not "a person" without a name."""
    from command_api.application import Actor, get_application
    from domain.lifecycle import Role

    _, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)
    automation, now = Actor("automation", Role.SYSTEM), datetime.now(UTC)
    app = get_application()
    app.assign_ticket(UUID(tid), automation, agent_id=str(agent.pk), policy="least_loaded")
    app.record_sla_breach(UUID(tid), automation, target="first_response", deadline=now,
                          breached_at=now, priority="medium", policy="medium")  # fmt: skip
    named = {"id": "automation", "role": "system", "name": "Automation"}
    staff = a_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assert [e["actor"] for e in staff if e["type"] in ("AgentAssigned", "SlaBreached")] == [
        named,
        named,
    ]
    seen = c_client.get(f"/api/tickets/{tid}/history").json()["events"]  # no SLA bookkeeping
    assert [e["actor"] for e in seen if e["type"] == "AgentAssigned"] == [named]
