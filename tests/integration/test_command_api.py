"""The command API against the real event store (PostgreSQL test database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from command_api.application import get_application

pytestmark = pytest.mark.django_db


def open_ticket(client: Any, **body: Any) -> dict[str, Any]:
    payload = {"subject": "Printer on fire", "description": "Smoke everywhere", **body}
    res = client.post("/api/tickets", payload, format="json")
    assert res.status_code == 201, res.content
    return res.json()


def event_count(ticket_id: str) -> int:
    from uuid import UUID

    return len(get_application().ticket_events(UUID(ticket_id)))


def test_open_ticket_returns_id_version_position(api):
    customer, client = api("customer")
    _, agent = api("agent")  # staff set priority and tags (test_ticket_intake.py)
    body = open_ticket(agent, customer_id=customer.pk, priority="high", tags=["Billing", "billing"])
    assert set(body) == {"id", "version", "position"}
    assert body["version"] == 1
    assert isinstance(body["position"], int)
    assert body["position"] > 0
    ticket = client.get(f"/api/tickets/{body['id']}").json()
    assert ticket["status"] == "open"
    assert ticket["priority"] == "high"
    assert ticket["tags"] == ["billing"]


def test_positions_increase_with_each_command(api):
    _, client = api("customer")
    first = open_ticket(client)
    res = client.post(f"/api/tickets/{first['id']}/messages", {"body": "more"}, format="json")
    assert res.status_code == 201
    assert res.json()["version"] == 2
    assert res.json()["position"] > first["position"]


def test_full_lifecycle_through_the_api(api):
    _customer, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)["id"]

    r = a_client.post(f"/api/tickets/{tid}/assign", {"agent_id": agent.pk}, format="json")
    assert r.status_code == 200, r.content
    r = a_client.post(f"/api/tickets/{tid}/status", {"status": "in_progress"}, format="json")
    assert r.status_code == 200
    r = a_client.post(f"/api/tickets/{tid}/messages", {"body": "Which printer?"}, format="json")
    assert r.status_code == 201
    r = a_client.post(
        f"/api/tickets/{tid}/status", {"status": "waiting_on_customer"}, format="json"
    )
    assert r.status_code == 200
    r = c_client.post(f"/api/tickets/{tid}/messages", {"body": "The big one"}, format="json")
    assert r.status_code == 201

    ticket = c_client.get(f"/api/tickets/{tid}").json()
    assert ticket["status"] == "in_progress"
    assert ticket["assigned_agent_id"] == str(agent.pk)
    thread = c_client.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [m["body"] for m in thread] == ["Which printer?", "The big one"]

    r = a_client.patch(
        f"/api/tickets/{tid}", {"priority": "urgent", "tags": ["hardware"]}, format="json"
    )
    assert r.status_code == 200
    ticket = a_client.get(f"/api/tickets/{tid}").json()
    assert (ticket["priority"], ticket["tags"]) == ("urgent", ["hardware"])

    history = a_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assert [e["type"] for e in history] == [
        "TicketOpened",
        "AgentAssigned",
        "StatusChanged",
        "StatusChanged",
        "MessagePosted",
        "StatusChanged",
        "MessagePosted",
        "StatusChanged",
        "TicketEdited",
        "PriorityChanged",
    ]
    assert history[1]["actor"] == {"id": str(agent.pk), "role": "agent", "name": agent.first_name}
    assert history[1]["data"]["policy"] == "manual"
    assert history[7]["data"] == {
        "from_status": "waiting_on_customer",
        "to_status": "in_progress",
        "reason": "customer replied",
    }


def test_illegal_transition_is_409_and_writes_nothing(api):
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    r = client.post(f"/api/tickets/{tid}/status", {"status": "waiting_on_customer"}, format="json")
    assert r.status_code == 409
    assert r.json()["error"] == "illegal_transition"
    assert event_count(tid) == 1


def test_closed_is_final(api):
    _, admin = api("admin")
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    assert (
        admin.post(f"/api/tickets/{tid}/status", {"status": "closed"}, format="json").status_code
        == 200
    )
    r = client.post(f"/api/tickets/{tid}/messages", {"body": "hello?"}, format="json")
    assert r.status_code == 409
    assert r.json()["error"] == "ticket_closed"


# ---------------------------------------------------------------- bad input: 400, nothing written
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": ""}, "body"),
        ({"body": 42}, "body"),
        ({"body": "x", "internal": "yes"}, "internal"),
        ({"body": "x", "colour": "red"}, "colour"),
        ({"body": "x" * 20_001}, "body"),
        ({"body": "x", "attachments": [{"name": "a.txt", "size": -1}]}, "attachments"),
        ({"body": "x", "attachments": "a.txt"}, "attachments"),
    ],
)
def test_invalid_message_bodies_are_400(api, payload, field):
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    r = client.post(f"/api/tickets/{tid}/messages", payload, format="json")
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]
    assert event_count(tid) == 1


def test_malformed_json_is_400(api):
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    r = client.post(
        f"/api/tickets/{tid}/messages", data='{"body": ', content_type="application/json"
    )
    assert r.status_code == 400
    assert r.json()["error"] == "parse_error"
    r = client.post(f"/api/tickets/{tid}/messages", data="[1, 2]", content_type="application/json")
    assert r.status_code == 400
    assert event_count(tid) == 1


def test_oversize_body_is_400(api):
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    big = json.dumps({"body": "x" * 300_000})
    r = client.post(f"/api/tickets/{tid}/messages", data=big, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["error"] == "body_too_large"
    assert event_count(tid) == 1


def test_form_encoding_is_refused(api):
    _, client = api("customer")
    r = client.post("/api/tickets", {"subject": "x"})  # multipart
    assert r.status_code == 415


def test_unknown_ticket_is_404(api):
    _, client = api("agent")
    assert client.get("/api/tickets/not-a-uuid").status_code == 404
    r = client.post(
        "/api/tickets/00000000-0000-0000-0000-000000000000/messages", {"body": "x"}, format="json"
    )
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_assign_to_unknown_agent_is_400(api, make_user):
    _, client = api("agent")
    customer = make_user("customer")
    _, c_client = api("customer", user=customer)
    tid = open_ticket(c_client)["id"]
    r = client.post(f"/api/tickets/{tid}/assign", {"agent_id": customer.pk}, format="json")
    assert r.status_code == 400
    assert r.json()["fields"] == {"agent_id": ["No such agent."]}


# ---------------------------------------------------------------- stale-reply protection
def test_stale_public_reply_is_409_with_the_newer_messages(api):
    _, c_client = api("customer")
    agent, a_client = api("agent")
    opened = open_ticket(c_client)
    tid = opened["id"]
    a_client.post(f"/api/tickets/{tid}/assign", {"agent_id": agent.pk}, format="json")
    seen = a_client.get(f"/api/tickets/{tid}").json()["version"]
    r = c_client.post(f"/api/tickets/{tid}/messages", {"body": "Any news?"}, format="json")
    assert r.status_code == 201
    before = event_count(tid)

    r = a_client.post(
        f"/api/tickets/{tid}/messages",
        {"body": "We are on it"},
        format="json",
        HTTP_IF_MATCH=f'"{seen}"',
    )
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "stale_reply"
    assert [m["body"] for m in body["messages"]] == ["Any news?"]
    assert event_count(tid) == before

    # An internal note is not a reply: it is never refused as stale.
    r = a_client.post(
        f"/api/tickets/{tid}/messages",
        {"body": "note", "internal": True},
        format="json",
        HTTP_IF_MATCH=f'"{seen}"',
    )
    assert r.status_code == 201
    # Having read the thread (newer version), the reply goes through.
    r = a_client.post(
        f"/api/tickets/{tid}/messages",
        {"body": "We are on it"},
        format="json",
        HTTP_IF_MATCH=str(body["current_version"]),
    )
    assert r.status_code == 201


def test_bad_if_match_is_400(api):
    _, client = api("customer")
    tid = open_ticket(client)["id"]
    r = client.post(
        f"/api/tickets/{tid}/messages", {"body": "x"}, format="json", HTTP_IF_MATCH="yesterday"
    )
    assert r.status_code == 400


# ---------------------------------------------------------------- audit: history and as-of
def test_as_of_version_and_time(api):
    _, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)["id"]
    a_client.post(f"/api/tickets/{tid}/assign", {"agent_id": agent.pk}, format="json")
    a_client.patch(f"/api/tickets/{tid}", {"subject": "Printer is fine now"}, format="json")

    v1 = a_client.get(f"/api/tickets/{tid}", {"as_of": "1"}).json()
    assert (v1["version"], v1["status"], v1["subject"]) == (1, "open", "Printer on fire")

    history = a_client.get(f"/api/tickets/{tid}/history").json()["events"]
    assigned_at = history[2]["time"]  # the StatusChanged to assigned
    then = a_client.get(f"/api/tickets/{tid}", {"as_of": assigned_at}).json()
    assert (then["version"], then["status"], then["subject"]) == (3, "assigned", "Printer on fire")

    now = a_client.get(f"/api/tickets/{tid}").json()
    assert (now["version"], now["subject"]) == (4, "Printer is fine now")

    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert a_client.get(f"/api/tickets/{tid}", {"as_of": past}).status_code == 404
    assert a_client.get(f"/api/tickets/{tid}", {"as_of": "soon"}).status_code == 400
    assert a_client.get(f"/api/tickets/{tid}", {"as_of": "2026-01-01T00:00:00"}).status_code == 400
    assert a_client.get(f"/api/tickets/{tid}", {"as_of": "0"}).status_code == 400


def test_customer_history_hides_internal_notes(api):
    _customer, c_client = api("customer")
    _, a_client = api("agent")
    tid = open_ticket(c_client)["id"]
    a_client.post(
        f"/api/tickets/{tid}/messages", {"body": "secret", "internal": True}, format="json"
    )
    a_client.post(f"/api/tickets/{tid}/messages", {"body": "hello"}, format="json")
    c_types = [e["type"] for e in c_client.get(f"/api/tickets/{tid}/history").json()["events"]]
    a_types = [e["type"] for e in a_client.get(f"/api/tickets/{tid}/history").json()["events"]]
    assert c_types == ["TicketOpened", "MessagePosted"]
    assert a_types == ["TicketOpened", "MessagePosted", "MessagePosted"]
    c_thread = c_client.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [m["body"] for m in c_thread] == ["hello"]
    a_thread = a_client.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [(m["body"], m["internal"]) for m in a_thread] == [("secret", True), ("hello", False)]
    # the audit view (rebuilt from events) hides them from the customer too; the customer
    # numbers public events only, so the reply (v3) is their version 2 (issue 21)
    c_as_of = c_client.get(f"/api/tickets/{tid}", {"as_of": "2"}).json()
    assert [(m["body"], m["version"]) for m in c_as_of["messages"]] == [("hello", 2)]
    assert c_client.get(f"/api/tickets/{tid}", {"as_of": "3"}).status_code == 404


def test_schema_and_docs_are_served(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200
    text = r.content.decode()
    for path in ["/api/tickets", "/api/tickets/{ticket_id}/messages", "/api/auth/refresh"]:
        assert f"  {path}:" in text
    assert client.get("/api/docs/").status_code == 200
