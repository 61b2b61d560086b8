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

    # A public event after the note moves the customer's view again, to that event; their
    # version counts public events, so it is the next one: no gap where the note was.
    assigned = agent.post(f"/api/tickets/{tid}/assign", {"agent_id": staff.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    moved = customer.get(f"/api/tickets/{tid}").json()
    staff_moved = agent.get(f"/api/tickets/{tid}").json()
    # The assignment and the status change it brings (Open to Assigned): the customer's 3 and
    # 4 after their 2, the staff's 4 and 5 after the note's 3.
    assert (seen.json()["version"], moved["version"]) == (2, 4)
    assert (staff_after["version"], staff_moved["version"]) == (3, 5)
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


def test_a_customer_counts_public_events_only_everywhere_over_rest(api):
    """Issue 21: a customer's versions are 1, 2, 3, ... over public events, in every answer,
    so no gap tells them an internal note was written; staff keep the real versions."""
    _, customer = api("customer")
    _, agent = api("agent")
    opened = customer.post("/api/tickets", {"subject": "S", "description": "d"}, format="json")
    assert (opened.json()["version"], opened.headers["ETag"]) == (1, '"1"')
    tid = opened.json()["id"]
    note = {"body": "psst", "internal": True}
    assert agent.post(f"/api/tickets/{tid}/messages", note, format="json").status_code == 201
    reply = agent.post(f"/api/tickets/{tid}/messages", {"body": "Hello"}, format="json")
    assert reply.json()["version"] == 3  # staff: the real version
    assert agent.post(f"/api/tickets/{tid}/messages", note, format="json").status_code == 201

    seen = customer.get(f"/api/tickets/{tid}")
    assert (seen.json()["version"], seen.headers["ETag"]) == (2, '"2"')
    # Their If-Match is their number: mapped to the real version, stale ones refused as before.
    stale = customer.post(
        f"/api/tickets/{tid}/messages", {"body": "?"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 409, stale.content
    assert stale.json()["current_version"] == 2
    assert [m["version"] for m in stale.json()["messages"]] == [2]
    answered = customer.post(
        f"/api/tickets/{tid}/messages", {"body": "Thanks"}, format="json", HTTP_IF_MATCH='"2"'
    )
    assert answered.status_code == 201, answered.content
    assert (answered.json()["version"], answered.headers["ETag"]) == (3, '"3"')

    detail = customer.get(f"/api/tickets/{tid}")
    assert (detail.json()["version"], detail.headers["ETag"]) == (3, '"3"')
    listed = customer.get("/api/tickets").json()["results"]
    assert [t["version"] for t in listed] == [3]
    messages = customer.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [(m["body"], m["version"]) for m in messages] == [("Hello", 2), ("Thanks", 3)]
    history = customer.get(f"/api/tickets/{tid}/history").json()["events"]
    assert [(e["type"], e["version"]) for e in history] == [
        ("TicketOpened", 1), ("MessagePosted", 2), ("MessagePosted", 3),
    ]  # fmt: skip
    as_of = customer.get(f"/api/tickets/{tid}", {"as_of": "2"})
    assert (as_of.json()["version"], as_of.headers["ETag"]) == (2, '"2"')
    assert [(m["body"], m["version"]) for m in as_of.json()["messages"]] == [("Hello", 2)]
    assert customer.get(f"/api/tickets/{tid}", {"as_of": "4"}).status_code == 404
    now = customer.get(f"/api/tickets/{tid}", {"as_of": "2099-01-01T00:00:00Z"}).json()
    assert [m["version"] for m in now["messages"]] == [2, 3]
    notes = customer.get("/api/notifications").json()["results"]
    assert [(n["kind"], n["payload"]["version"]) for n in notes] == [("public_reply", 2)]

    # Staff: the real versions, unchanged.
    assert agent.get(f"/api/tickets/{tid}").json()["version"] == 5
    staff_messages = agent.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [m["version"] for m in staff_messages] == [2, 3, 4, 5]
    staff_history = agent.get(f"/api/tickets/{tid}/history").json()["events"]
    assert [e["version"] for e in staff_history] == [1, 2, 3, 4, 5]
    assert agent.get(f"/api/tickets/{tid}", {"as_of": "4"}).json()["version"] == 4


def test_the_migration_backfills_public_versions_as_the_projector_counts_them(api):
    """Migration 0021's SQL (``is_public`` over the stored events) gives the numbers the
    projectors give: rows scrambled, backfilled, equal to what was projected."""
    import importlib

    from django.db import connection

    from infra.postgres.models import MessageRecord, NotificationTicketRecord, TicketRecord

    migration = importlib.import_module("infra.postgres.migrations.0021_public_ordinal")
    staff, agent = api("agent")
    _, customer = api("customer")
    tid = customer.post("/api/tickets", {"subject": "S", "description": "d"}, format="json")
    tid = tid.json()["id"]
    for body, internal in (("a", True), ("b", False), ("c", True), ("d", False)):
        agent.post(f"/api/tickets/{tid}/messages", {"body": body, "internal": internal},
                   format="json")  # fmt: skip
    agent.post(f"/api/tickets/{tid}/assign", {"agent_id": staff.pk}, format="json")
    assert customer.get(f"/api/tickets/{tid}").json()["version"] == 5  # opened, b, d, assigned

    def stored() -> tuple[object, ...]:
        return (
            TicketRecord.objects.get(id=tid).public_version,
            list(MessageRecord.objects.filter(ticket_id=tid).order_by("version")
                 .values_list("public_version", flat=True)),
            NotificationTicketRecord.objects.get(id=tid).public_version,
        )  # fmt: skip

    assert stored() == (5, [None, 2, None, 3], 5)
    TicketRecord.objects.filter(id=tid).update(public_version=99)
    MessageRecord.objects.filter(ticket_id=tid).update(public_version=99)
    NotificationTicketRecord.objects.filter(id=tid).update(public_version=99)
    with connection.schema_editor() as editor:
        migration.backfill(None, editor)
    assert stored() == (5, [99, 2, 99, 3], 5)  # internal notes' rows are left as they are
