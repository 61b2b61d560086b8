"""``GET /api/search`` through HTTP: commands write, the search projector catches up, we search.

The event log is shared by every test of the session, so each test searches for words only
it wrote (``token()``).
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from rest_framework.test import APIClient

from config.bootstrap import runner

pytestmark = pytest.mark.django_db


def token() -> str:
    """A word no other test wrote (the tsvector parser keeps ``zq1a2b...`` whole)."""
    return "zq" + uuid4().hex[:12]


def open_ticket(client: Any, **body: Any) -> dict[str, Any]:
    r = client.post("/api/tickets", {"description": "", **body}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def post(client: Any, ticket_id: str, body: str, **extra: Any) -> dict[str, Any]:
    r = client.post(f"/api/tickets/{ticket_id}/messages", {"body": body, **extra}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def search(client: Any, q: str, **params: Any) -> dict[str, Any]:
    r = client.get("/api/search", {"q": q, **params})
    assert r.status_code == 200, r.content
    return r.json()  # type: ignore[no-any-return]


def ids(body: dict[str, Any], group: str) -> list[str]:
    return [hit["id"] for hit in body["groups"][group]["results"]]


def counts(body: dict[str, Any]) -> dict[str, int]:
    return {name: group["count"] for name, group in body["groups"].items()}


def test_results_are_grouped_by_kind_best_first(api, make_user):
    word = token()
    customer = make_user("customer", company=f"{word} Industries")
    _, c = api("customer", user=customer)
    _, a = api("agent")
    in_subject = open_ticket(c, subject=f"The {word} broke")["id"]
    in_description = open_ticket(c, subject="Other", description=f"about the {word}")["id"]
    message = post(a, in_subject, f"Is the {word} plugged in?")

    body = search(a, word)
    assert set(body) == {"query", "groups", "page", "page_size"}
    assert (body["query"], body["page"], body["page_size"]) == (word, 1, 10)
    assert counts(body) == {"tickets": 2, "messages": 1, "customers": 1}
    assert ids(body, "tickets") == [in_subject, in_description]
    assert ids(body, "customers") == [str(customer.pk)]
    (hit,) = body["groups"]["messages"]["results"]
    assert hit["ticket_id"] == in_subject
    assert hit["title"] == f"The {word} broke"
    assert hit["snippet"] == f"Is the <mark>{word}</mark> plugged in?"
    assert hit["internal"] is False
    assert hit["occurred_at"] is not None
    ticket = body["groups"]["tickets"]["results"][0]
    assert ticket["snippet"].startswith(f"The <mark>{word}</mark> broke")
    assert set(ticket) == {
        "id", "ticket_id", "customer_id", "title", "snippet", "internal", "status", "priority",
        "assigned_agent_id", "tags", "created_at", "updated_at", "occurred_at",
    }  # fmt: skip
    assert (ticket["status"], ticket["customer_id"]) == ("open", str(customer.pk))
    assert message["position"] > 0


def test_customers_search_their_own_tickets_without_internal_notes(api):
    word, secret = token(), token()
    _, alice = api("customer")
    _, bob = api("customer")
    _, agent = api("agent")
    mine = open_ticket(alice, subject=f"{word} mine")["id"]
    open_ticket(bob, subject=f"{word} theirs")
    post(agent, mine, f"{word} public answer")
    post(agent, mine, f"{word} {secret} internal note", internal=True)

    body = search(alice, word)
    assert ids(body, "tickets") == [mine]
    assert [h["internal"] for h in body["groups"]["messages"]["results"]] == [False]
    assert counts(body) == {"tickets": 1, "messages": 1, "customers": 0}
    assert counts(search(alice, secret)) == {"tickets": 0, "messages": 0, "customers": 0}
    assert counts(search(alice, word, kind="customers")) == {
        "tickets": 0,
        "messages": 0,
        "customers": 0,
    }

    staff = search(agent, secret)
    assert [h["internal"] for h in staff["groups"]["messages"]["results"]] == [True]
    assert counts(search(agent, word))["tickets"] == 2


def test_filters(api):
    word = token()
    customer, _ = api("customer")
    agent, a = api("agent")
    # Staff set priorities and tags (customers may not: test_ticket_intake.py).
    on_behalf = {"subject": word, "customer_id": customer.pk}
    t1 = open_ticket(a, **on_behalf, priority="high", tags=["billing", "vat"])["id"]
    t2 = open_ticket(a, **on_behalf, priority="low", tags=["api"])["id"]
    t3 = open_ticket(a, **on_behalf, priority="high")["id"]
    r = a.post(f"/api/tickets/{t3}/assign", {"agent_id": agent.pk}, format="json")
    assert r.status_code == 200
    r = a.post(f"/api/tickets/{t2}/status", {"status": "resolved"}, format="json")
    assert r.status_code == 200
    post(a, t3, f"{word} on its way")

    def q(**params: Any) -> set[str]:
        return set(ids(search(a, word, page_size=50, **params), "tickets"))

    assert q() == {t1, t2, t3}
    assert q(priority="high") == {t1, t3}
    assert q(status="open") == {t1}
    assert q(status="open,assigned") == {t1, t3}
    assert q(agent=agent.pk) == {t3}
    assert q(agent="none") == {t1, t2}
    assert q(tags="billing") == {t1}
    assert q(tags="Billing,VAT") == {t1}
    assert q(tags="billing,api") == set()
    created = {
        hit["id"]: hit["created_at"] for hit in search(a, word)["groups"]["tickets"]["results"]
    }
    assert q(created_from=created[t2]) == {t2, t3}
    assert q(created_to=created[t2]) == {t1}
    assert q(updated_from=created[t3]) >= {t3}
    by_agent = search(a, word, agent=agent.pk, kind="messages")
    assert counts(by_agent) == {"tickets": 0, "messages": 1, "customers": 0}


def test_pagination(api):
    word = token()
    _, c = api("customer")
    made = [open_ticket(c, subject=f"{word} {i}")["id"] for i in range(5)]
    pages = [search(c, word, page=p, page_size=2) for p in (1, 2, 3)]
    assert [ids(p, "tickets") for p in pages] == [made[4:2:-1], made[2:0:-1], made[0:1]]
    assert {p["groups"]["tickets"]["count"] for p in pages} == {5}
    assert {p["groups"]["tickets"]["count_exact"] for p in pages} == {True}
    assert [p["page"] for p in pages] == [1, 2, 3]


def test_a_count_past_the_ranking_cap_is_a_lower_bound(api, monkeypatch):
    from infra.postgres import search as pg

    monkeypatch.setattr(pg, "RANK_ALL_UP_TO", 3)
    word = token()
    _, c = api("customer")
    made = [open_ticket(c, subject=f"{word} {i}")["id"] for i in range(5)]
    pages = [search(c, word, page=p, page_size=2) for p in (1, 2, 3)]
    # The newest three are ranked and paged; the count says "at least 3".
    assert [ids(p, "tickets") for p in pages] == [made[4:2:-1], made[2:3], []]
    assert {(p["groups"]["tickets"]["count"], p["groups"]["tickets"]["count_exact"])
            for p in pages} == {(3, False)}  # fmt: skip


def test_an_edited_ticket_is_found_by_its_new_words(api):
    old, new = token(), token()
    _, c = api("customer")
    tid = open_ticket(c, subject=f"about {old}")["id"]
    assert ids(search(c, old), "tickets") == [tid]
    r = c.patch(f"/api/tickets/{tid}", {"subject": f"about {new}"}, format="json")
    assert r.status_code == 200
    assert ids(search(c, old), "tickets") == []
    assert ids(search(c, new), "tickets") == [tid]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 501}, "q"),
        ({"q": "x", "page": "0"}, "page"),
        ({"q": "x", "page": "two"}, "page"),
        ({"q": "x", "page_size": "51"}, "page_size"),
        ({"q": "x", "page_size": "0"}, "page_size"),
        ({"q": "x", "kind": "agents"}, "kind"),
        ({"q": "x", "status": "pending"}, "status"),
        ({"q": "x", "priority": "asap"}, "priority"),
        ({"q": "x", "created_from": "yesterday"}, "created_from"),
        ({"q": "x", "updated_to": "2025-13-01T00:00:00Z"}, "updated_to"),
        ({"q": "x", "after": "soon"}, "after"),
    ],
)
def test_bad_parameters_are_400(api, params, field):
    _, a = api("agent")
    r = a.get("/api/search", params)
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["error"] == "invalid"
    assert field in body["detail"]
    assert field in body["fields"]


def test_anonymous_is_401():
    r = APIClient().get("/api/search", {"q": "x"})
    assert r.status_code == 401
    assert r.json()["error"] == "not_authenticated"


def test_the_schema_describes_search(api):
    _, a = api("agent")
    schema = a.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "kind", "status", "priority", "agent", "tags", "page", "after"} <= names
    assert "200" in operation["responses"]


@pytest.mark.django_db(transaction=True)
def test_after_waits_for_the_search_projection(api, settings):
    """``?after=<position>`` waits for the search projector; past the bound it says stale."""
    word = token()
    _, c = api("customer")
    runner("search").catch_up()
    raw = APIClient()  # a client that does not run the projectors before reading
    raw.credentials(HTTP_AUTHORIZATION=c._credentials["HTTP_AUTHORIZATION"])
    res = open_ticket(c, subject=word)

    settings.READ_AFTER_TIMEOUT = 0.2
    r = raw.get("/api/search", {"q": word, "after": res["position"]})
    assert r.status_code == 200
    assert r["X-Deskstream-Stale"] == "true"
    assert int(r["X-Deskstream-Position"]) < res["position"]
    assert r.json()["groups"]["tickets"]["count"] == 0

    def catch_up() -> None:
        try:
            runner("search").catch_up()
        finally:
            connection.close()

    settings.READ_AFTER_TIMEOUT = 10
    thread = threading.Timer(0.3, catch_up)
    thread.start()
    r = raw.get("/api/search", {"q": word, "after": res["position"]})
    thread.join()
    assert "X-Deskstream-Stale" not in r
    assert int(r["X-Deskstream-Position"]) >= res["position"]
    assert ids(r.json(), "tickets") == [res["id"]]
