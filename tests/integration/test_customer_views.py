"""What a customer's views must not tell: when staff wrote internal notes on their ticket
(its version, position, updated_at and last_message_at follow public events only), nor how
the automatic assignment chose (issue 21)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

pytestmark = pytest.mark.django_db

MOVING = ("version", "position", "updated_at", "last_message_at")


def test_internal_notes_do_not_move_the_customers_view_of_a_ticket(api):
    _, customer = api("customer")
    staff, agent = api("agent")
    older = customer.post("/api/tickets", {"subject": "Older", "description": "d"}, format="json")
    newer = customer.post("/api/tickets", {"subject": "Newer", "description": "d"}, format="json")
    tid = older.json()["id"]
    reply = agent.post(f"/api/tickets/{tid}/messages", {"body": "Looking"}, format="json")
    assert reply.status_code == 201
    seen = customer.get(f"/api/tickets/{tid}")
    staff_seen = agent.get(f"/api/tickets/{tid}").json()
    assert seen.json()["last_message_at"] is not None

    note = {"body": "VIP, be careful", "internal": True}
    assert agent.post(f"/api/tickets/{tid}/messages", note, format="json").status_code == 201

    after = customer.get(f"/api/tickets/{tid}")
    assert {k: after.json()[k] for k in MOVING} == {k: seen.json()[k] for k in MOVING}
    assert after.headers["ETag"] == seen.headers["ETag"] == f'"{seen.json()["version"]}"'
    assert after.json()["message_count"] == 1
    listed = customer.get("/api/tickets", {"sort": "-updated_at"}).json()["results"]
    assert [t["id"] for t in listed] == [tid, newer.json()["id"]]  # the reply, not the note
    assert {k: listed[0][k] for k in MOVING} == {k: seen.json()[k] for k in MOVING}
    just_after = datetime.fromisoformat(seen.json()["updated_at"]) + timedelta(microseconds=1)
    later = customer.get("/api/tickets", {"updated_from": just_after.isoformat()})
    assert later.json()["results"] == []  # nothing changed for the customer after the reply

    staff_after = agent.get(f"/api/tickets/{tid}").json()  # staff see the note move it all
    assert staff_after["version"] == staff_seen["version"] + 1
    assert staff_after["position"] > staff_seen["position"]
    assert staff_after["updated_at"] > staff_seen["updated_at"]
    assert staff_after["last_message_at"] > staff_seen["last_message_at"]
    assert staff_after["message_count"] == 2

    # A public event after the note moves the customer's view again, to that event.
    assigned = agent.post(f"/api/tickets/{tid}/assign", {"agent_id": staff.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    moved = customer.get(f"/api/tickets/{tid}").json()
    staff_moved = agent.get(f"/api/tickets/{tid}").json()
    assert moved["version"] == staff_moved["version"]
    assert moved["position"] == staff_moved["position"]
    assert moved["updated_at"] == staff_moved["updated_at"]
    assert moved["last_message_at"] == seen.json()["last_message_at"]


def test_a_customers_reply_after_an_internal_note_is_not_stale(api):
    _, customer = api("customer")
    _, agent = api("agent")
    tid = customer.post("/api/tickets", {"subject": "S", "description": "d"}, format="json").json()[
        "id"
    ]
    agent.post(f"/api/tickets/{tid}/messages", {"body": "n", "internal": True}, format="json")
    etag = customer.get(f"/api/tickets/{tid}").headers["ETag"]
    r = customer.post(
        f"/api/tickets/{tid}/messages", {"body": "any news?"}, format="json", HTTP_IF_MATCH=etag
    )
    assert r.status_code == 201, r.content


def test_the_ticket_as_of_a_time_follows_public_events_for_customers(api):
    _, customer = api("customer")
    _, agent = api("agent")
    opened = customer.post("/api/tickets", {"subject": "S", "description": "d"}, format="json")
    tid = opened.json()["id"]
    agent.post(f"/api/tickets/{tid}/messages", {"body": "Hello"}, format="json")
    before = customer.get(f"/api/tickets/{tid}", {"as_of": "99"})  # a version past the last
    assert before.status_code == 404
    seen = customer.get(f"/api/tickets/{tid}", {"as_of": "2"}).json()
    agent.post(f"/api/tickets/{tid}/messages", {"body": "psst", "internal": True}, format="json")
    now = customer.get(f"/api/tickets/{tid}", {"as_of": "2099-01-01T00:00:00Z"})
    assert now.status_code == 200
    assert {k: now.json()[k] for k in ("version", "updated_at", "last_message_at")} == {
        k: seen[k] for k in ("version", "updated_at", "last_message_at")
    }
    assert now.headers["ETag"] == f'"{seen["version"]}"'
    staff = agent.get(f"/api/tickets/{tid}", {"as_of": "2099-01-01T00:00:00Z"}).json()
    assert staff["version"] == seen["version"] + 1
