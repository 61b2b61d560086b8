"""Macros, saved filters and formatted messages through the API (issue 20, ADR 0046)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from uuid import UUID

import pytest

from command_api.application import get_application

pytestmark = pytest.mark.django_db


def open_ticket(client: Any, subject: str = "Printer on fire", **more: Any) -> str:
    answer = client.post(
        "/api/tickets", {"subject": subject, "description": "Smoke", **more}, format="json"
    )
    assert answer.status_code == 201, answer.content
    return str(answer.json()["id"])


def make_macro(client: Any, **body: Any) -> Any:
    return client.post(
        "/api/macros", {"name": "Thanks", "body": "Thank you!", **body}, format="json"
    )


def test_agents_see_shared_and_own_macros_and_edit_only_their_own(api: Any) -> None:
    _, admin = api("admin")
    ada, a_client = api("agent")
    _, b_client = api("agent")
    shared = make_macro(admin, name="Shared hello", shared=True)
    assert shared.status_code == 201, shared.content
    own = make_macro(a_client, name="Ada's own", status="resolved", add_tags=["Billing"])
    assert own.status_code == 201
    other = make_macro(b_client, name="Bob's own")
    assert other.status_code == 201

    seen = {m["name"]: m for m in a_client.get("/api/macros").json()}
    assert {"Shared hello", "Ada's own"} <= set(seen)
    assert "Bob's own" not in seen
    assert seen["Shared hello"]["editable"] is False
    assert seen["Ada's own"] | {"id": None} == {
        "id": None,
        "name": "Ada's own",
        "body": "Thank you!",
        "shared": False,
        "mine": True,
        "editable": True,
        "status": "resolved",
        "add_tags": ["billing"],
        "assign_to": None,
        "version": 1,
    }

    sid, oid, bid = (r.json()["id"] for r in (shared, own, other))
    refused = a_client.patch(f"/api/macros/{sid}", {"name": "Mine now"}, format="json")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    hidden = a_client.patch(f"/api/macros/{bid}", {"name": "Mine now"}, format="json")
    assert (hidden.status_code, hidden.json()["error"]) == (404, "not_found")
    assert a_client.delete(f"/api/macros/{bid}").status_code == 404
    # Agents keep no shared macros; admins change shared ones.
    assert make_macro(a_client, shared=True).status_code == 403
    changed = admin.patch(f"/api/macros/{sid}", {"body": "Hi {{customer.name}}"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["version"] == 2

    assert a_client.patch(f"/api/macros/{oid}", {"status": None}, format="json").status_code == 200
    assert a_client.delete(f"/api/macros/{oid}").status_code == 200
    names = [m["name"] for m in a_client.get("/api/macros").json()]
    assert "Ada's own" not in names
    assert a_client.patch(f"/api/macros/{oid}", {"name": "Back"}, format="json").status_code == 404

    # Each change is an event naming who made it.
    stored = list(get_application().events.get(UUID(oid)))
    assert [type(e).__name__ for e in stored] == ["MacroCreated", "MacroChanged", "MacroDeleted"]
    assert {(e.actor_id, e.actor_role) for e in stored} == {(str(ada.pk), "agent")}


def test_bad_macros_are_refused_naming_the_field_and_nothing_is_stored(api: Any) -> None:
    _, a_client = api("agent")
    before = len(a_client.get("/api/macros").json())
    cases = [
        ({"name": ""}, "name"),
        ({"body": "   "}, "body"),
        ({"body": "Hi {{customer.shoe_size}}"}, "body"),
        ({"status": "exploded"}, "status"),
        ({"add_tags": "billing"}, "add_tags"),
        ({"add_tags": [""]}, "add_tags"),
        ({"assign_to": "somebody"}, "assign_to"),
        ({"shared": "yes"}, "shared"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        answer = make_macro(a_client, **body)
        assert answer.status_code == 400, (body, answer.content)
        assert field in answer.json()["fields"], (body, answer.json())
    assert len(a_client.get("/api/macros").json()) == before


def test_a_macro_filled_in_for_a_ticket(api: Any) -> None:
    customer, c_client = api("customer")
    customer.first_name, customer.last_name = "Grace", "Hopper"
    customer.save()
    agent, a_client = api("agent")
    agent.first_name, agent.last_name = "Ada", "Lovelace"
    agent.save()
    tid = open_ticket(c_client, "Toner low")
    mid = make_macro(
        a_client,
        body="Hello {{customer.name}}, about “{{ ticket.subject }}”: done. {{agent.name}}",
        status="resolved",
        add_tags=["toner"],
        assign_to="me",
    ).json()["id"]
    filled = a_client.get(f"/api/macros/{mid}/filled", {"ticket": tid})
    assert filled.status_code == 200, filled.content
    assert filled.json() == {
        "id": mid,
        "name": "Thanks",
        "body": "Hello Grace Hopper, about “Toner low”: done. Ada Lovelace",
        "status": "resolved",
        "add_tags": ["toner"],
        "assign_to": str(agent.pk),
        "assign_to_name": "Ada Lovelace",
    }
    for bad in ({}, {"ticket": "nope"}, {"ticket": "00000000-0000-0000-0000-000000000000"}):
        answer = a_client.get(f"/api/macros/{mid}/filled", bad)
        assert answer.status_code == 400, bad
        assert "ticket" in answer.json()["fields"], bad
    assert c_client.get(f"/api/macros/{mid}/filled", {"ticket": tid}).status_code == 403


def test_saved_filters_count_what_the_list_shows(api: Any) -> None:
    customer, c_client = api("customer")
    agent, a_client = api("agent")
    _, b_client = api("agent")
    urgent = open_ticket(a_client, "Down", priority="urgent", customer_id=customer.pk)
    open_ticket(c_client)
    a_client.post(f"/api/tickets/{urgent}/assign", {"agent_id": agent.pk}, format="json")

    saved = a_client.post(
        "/api/saved-filters",
        {"name": "My urgent", "filters": {"priority": ["urgent", "high"], "view": "mine"}},
        format="json",
    )
    assert saved.status_code == 201, saved.content
    mine = a_client.get("/api/saved-filters").json()
    assert [(f["name"], f["count"]) for f in mine] == [("My urgent", 1)]
    listed = a_client.get("/api/tickets", {"priority": "urgent,high", "view": "mine"}).json()
    assert [t["id"] for t in listed["results"]] == [urgent]
    # Personal: another agent neither sees nor deletes it.
    assert b_client.get("/api/saved-filters").json() == []
    fid = saved.json()["id"]
    assert b_client.delete(f"/api/saved-filters/{fid}").status_code == 404

    dup = a_client.post(
        "/api/saved-filters", {"name": " My  urgent ", "filters": {}}, format="json"
    )
    assert dup.status_code == 400
    assert "name" in dup.json()["fields"]
    for body, field in [
        ({"name": "", "filters": {}}, "name"),
        ({"name": "x", "filters": {"status": ["lost"]}}, "filters"),
        ({"name": "x", "filters": {"view": "everything"}}, "filters"),
        ({"name": "x", "filters": {"sort": "x"}}, "filters"),
        ({"name": "x"}, "filters"),
    ]:
        answer = a_client.post("/api/saved-filters", body, format="json")
        assert answer.status_code == 400, body
        assert field in answer.json()["fields"], (body, answer.json())
    assert len(a_client.get("/api/saved-filters").json()) == 1
    assert a_client.delete(f"/api/saved-filters/{fid}").status_code == 204
    assert a_client.get("/api/saved-filters").json() == []


XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    '<svg onload="alert(1)"></svg>',
]


def test_messages_carry_sanitised_html_and_their_source(api: Any) -> None:
    _, c_client = api("customer")
    _, a_client = api("agent")
    tid = open_ticket(c_client)
    body = "**Fixed**, see https://example.com/kb?a=1 and:\n\n- one\n- `two`\n\n> quoted"
    assert (
        a_client.post(f"/api/tickets/{tid}/messages", {"body": body}, format="json").status_code
        == 201
    )
    for payload in XSS:
        c_client.post(f"/api/tickets/{tid}/messages", {"body": payload}, format="json")
    messages = c_client.get(f"/api/tickets/{tid}/messages").json()["results"]
    reply = next(m for m in messages if m["body"] == body)  # the source is kept as written
    assert reply["body_html"] == (
        "<p><strong>Fixed</strong>, see "
        '<a href="https://example.com/kb?a=1" target="_blank" rel="noopener noreferrer nofollow">'
        "https://example.com/kb?a=1</a> and:</p>\n<ul>\n<li>one</li>\n<li><code>two</code></li>"
        "\n</ul>\n<blockquote>\n<p>quoted</p>\n</blockquote>"
    )
    for message in messages:
        assert_only_safe_html(message["body_html"])
    shown = {m["body"]: m["body_html"] for m in messages}
    assert shown["<script>alert(1)</script>"] == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert shown["[click](javascript:alert(1))"] == "<p>[click](javascript:alert(1))</p>"


class TagsAndAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def assert_only_safe_html(html: str) -> None:
    """Only formatting tags; attributes only on links, with a web or mail address."""
    parser = TagsAndAttributes()
    parser.feed(html)
    for tag, attrs in parser.seen:
        assert tag in {"p", "br", "em", "strong", "s", "ul", "ol", "li", "code", "pre",
                       "blockquote", "a"}, html  # fmt: skip
        if tag == "a":
            values = dict(attrs)
            assert set(values) == {"href", "target", "rel"}, html
            assert str(values["href"]).startswith(("https://", "http://", "mailto:")), html
            assert values["rel"] == "noopener noreferrer nofollow", html
        else:
            assert attrs == [] or (tag == "ol" and [a for a, _ in attrs] == ["start"]), html
