"""What a customer may say when opening a ticket: never its tags (they drive routing and are
staff-only), its priority (it drives SLA) only when an admin allows it (off by default); a
refused field is a 400 naming it, and nothing is stored (issue 21)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.postgres.models import TicketRecord
from tests.conftest import project_all

pytestmark = pytest.mark.django_db


def open_as(client: Any, **body: Any) -> Any:
    return client.post("/api/tickets", {"subject": "S", "description": "d", **body}, format="json")


def stored() -> int:
    project_all()
    return TicketRecord.objects.count()


def test_customers_may_not_tag_or_prioritise_their_tickets_by_default(api):
    _, customer = api("customer")
    _, admin = api("admin")
    assert admin.get("/api/settings/tickets").json() == {"customers_set_priority": False}
    assert customer.get("/api/auth/me").json()["may_set_priority"] is False
    before = stored()
    r = open_as(customer, priority="urgent")
    assert r.status_code == 400
    assert r.json()["fields"] == {"priority": ["Only staff set the priority of a ticket."]}
    r = open_as(customer, tags=["vip"])
    assert r.status_code == 400
    assert r.json()["fields"] == {"tags": ["Only staff tag tickets."]}
    assert stored() == before
    plain = open_as(customer)
    assert plain.status_code == 201
    assert customer.get(f"/api/tickets/{plain.json()['id']}").json()["priority"] == "medium"


def test_an_admin_lets_customers_choose_the_priority_never_the_tags(api):
    _, customer = api("customer")
    _, admin = api("admin")
    _, agent = api("agent")
    allowed = {"customers_set_priority": True}
    assert agent.put("/api/settings/tickets", allowed, format="json").status_code == 403
    assert admin.put("/api/settings/tickets", allowed, format="json").json() == allowed
    assert admin.get("/api/settings/tickets").json() == allowed
    assert customer.get("/api/auth/me").json()["may_set_priority"] is True
    r = open_as(customer, priority="urgent")
    assert r.status_code == 201, r.content
    assert customer.get(f"/api/tickets/{r.json()['id']}").json()["priority"] == "urgent"
    assert open_as(customer, tags=["vip"]).status_code == 400
    bad = admin.put("/api/settings/tickets", {"customers_set_priority": "yes"}, format="json")
    assert bad.status_code == 400
    assert list(bad.json()["fields"]) == ["customers_set_priority"]


def test_staff_set_both_when_opening_for_a_customer(api):
    customer_user, _ = api("customer")
    _, agent = api("agent")
    assert agent.get("/api/auth/me").json()["may_set_priority"] is True
    r = open_as(agent, customer_id=customer_user.pk, priority="high", tags=["vip"])
    assert r.status_code == 201, r.content
    ticket = agent.get(f"/api/tickets/{r.json()['id']}").json()
    assert (ticket["priority"], ticket["tags"]) == ("high", ["vip"])
