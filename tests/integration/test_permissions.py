"""The permission matrix: role x endpoint x own/other ticket, each case on a fresh ticket."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# endpoint name -> (method, path template, body)
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "read": ("get", "/api/tickets/{id}", None),
    "read_as_of": ("get", "/api/tickets/{id}?as_of=1", None),
    "history": ("get", "/api/tickets/{id}/history", None),
    "reply": ("post", "/api/tickets/{id}/messages", {"body": "hello"}),
    "internal_note": ("post", "/api/tickets/{id}/messages", {"body": "psst", "internal": True}),
    "resolve": ("post", "/api/tickets/{id}/status", {"status": "resolved"}),
    "close": ("post", "/api/tickets/{id}/status", {"status": "closed"}),
    "assign": ("post", "/api/tickets/{id}/assign", {"agent_id": "{agent}"}),
    "edit_subject": ("patch", "/api/tickets/{id}", {"subject": "new subject"}),
    "edit_tags": ("patch", "/api/tickets/{id}", {"tags": ["vip"]}),
    "priority": ("patch", "/api/tickets/{id}", {"priority": "urgent"}),
}

# who -> endpoint -> expected status
EXPECTED: dict[str, dict[str, int]] = {
    "anonymous": dict.fromkeys(ENDPOINTS, 401),
    "other_customer": dict.fromkeys(ENDPOINTS, 404),
    "own_customer": {
        "read": 200,
        "read_as_of": 200,
        "history": 200,
        "reply": 201,
        "internal_note": 403,
        "resolve": 200,
        "close": 409,  # the lifecycle: only an admin closes an open ticket
        "assign": 403,
        "edit_subject": 200,
        "edit_tags": 403,
        "priority": 403,
    },
    "agent": {**dict.fromkeys(ENDPOINTS, 200), "reply": 201, "internal_note": 201, "close": 409},
    "admin": {**dict.fromkeys(ENDPOINTS, 200), "reply": 201, "internal_note": 201},
}

CASES = [(who, name, code) for who, row in EXPECTED.items() for name, code in row.items()]


@pytest.mark.parametrize(("who", "endpoint", "expected"), CASES)
def test_permission_matrix(api, make_user, who, endpoint, expected):
    _owner, owner_client = api("customer")
    agent = make_user("agent")
    r = owner_client.post("/api/tickets", {"subject": "Help", "description": "x"}, format="json")
    tid = r.json()["id"]

    if who == "anonymous":
        client = APIClient()
    elif who == "own_customer":
        client = owner_client
    elif who == "other_customer":
        _, client = api("customer")
    else:
        _, client = api(who)

    method, path, body = ENDPOINTS[endpoint]
    if isinstance(body, dict):
        body = {k: (agent.pk if v == "{agent}" else v) for k, v in body.items()}
    response = getattr(client, method)(path.format(id=tid), body, format="json")
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert "error" in response.json()


def test_customer_cannot_open_ticket_for_someone_else(api, make_user):
    other = make_user("customer")
    _, client = api("customer")
    r = client.post("/api/tickets", {"subject": "x", "customer_id": other.pk}, format="json")
    assert r.status_code == 403


def test_staff_open_tickets_on_behalf_of_a_customer(api, make_user):
    customer = make_user("customer")
    _, agent = api("agent")
    r = agent.post("/api/tickets", {"subject": "Phoned in"}, format="json")
    assert r.status_code == 400
    assert "customer_id" in r.json()["fields"]
    r = agent.post(
        "/api/tickets", {"subject": "Phoned in", "customer_id": customer.pk}, format="json"
    )
    assert r.status_code == 201
    ticket = agent.get(f"/api/tickets/{r.json()['id']}").json()
    assert ticket["customer_id"] == str(customer.pk)
    _, c_client = api("customer", user=customer)
    assert c_client.get(f"/api/tickets/{ticket['id']}").status_code == 200


def test_availability_is_for_agents_only(api):
    _, customer = api("customer")
    assert (
        customer.post(
            "/api/agents/me/availability", {"availability": "online"}, format="json"
        ).status_code
        == 403
    )
    _, agent = api("agent")
    r = agent.post("/api/agents/me/availability", {"availability": "online"}, format="json")
    assert r.status_code == 200
    r = agent.post("/api/agents/me/availability", {"availability": "busy"}, format="json")
    assert r.status_code == 400
