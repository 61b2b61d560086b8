"""A draft streams to the agent who asked for it, over the WebSocket (stream ``drafts``), from
the live server as ``make run`` serves it: no model configured, so the draft comes from
retrieval (the reply that resolved a similar ticket), the Celery task eager in the request.
Other agents' sockets get none of it; customers may not subscribe. (The model's stream,
through the real ``openai`` client, is covered in tests/integration/test_llm_openai.py and
test_drafts_api.py.)"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from tests.conftest import LiveServer
from tests.e2e.test_realtime import WS, open_ticket
from tests.support.wait import wait_until


def resolve_with(server: LiveServer, agent: str, ticket: str, reply: str) -> None:
    with server.client(agent) as c:
        r = c.post(f"/api/tickets/{ticket}/messages", json={"body": reply})
        assert r.status_code == 201, r.text
        r = c.post(f"/api/tickets/{ticket}/status", json={"status": "resolved"})
        assert r.status_code == 200, r.text


def similar_to(server: LiveServer, token: str, ticket: str) -> list[Any]:
    with server.client(token) as c:
        r = c.get(f"/api/tickets/{ticket}/similar")
        return [hit["ticket_id"] for hit in r.json()["results"]]


def test_the_draft_streams_to_its_agent_only(live_api, e2e_user, e2e_token):
    topic = "zq" + uuid4().hex[:10]
    customer = e2e_token(e2e_user("customer"))
    asker, other = (e2e_token(e2e_user("agent")) for _ in range(2))
    past = open_ticket(live_api, customer, f"Router {topic} blinks red")["id"]
    reply = f"Hi,\n\nPlease hold the {topic} reset button for ten seconds.\n\nBest regards,\nBo"
    resolve_with(live_api, other, past, reply)
    ticket = open_ticket(live_api, customer, f"My router {topic} blinks red")["id"]
    wait_until(lambda: past in similar_to(live_api, asker, ticket), timeout=20)
    mine, theirs, customers = WS(live_api, asker), WS(live_api, other), WS(live_api, customer)
    try:
        _, ok = mine.subscribe(stream="drafts", ticket_id=ticket)
        assert ok == {"type": "subscribed", "sub": f"drafts:{ticket}", "stream": "drafts",
                      "ticket_id": ticket}  # fmt: skip
        assert theirs.subscribe(stream="drafts", ticket_id=ticket)[1]["type"] == "subscribed"
        _, refused = customers.subscribe(stream="drafts", ticket_id=ticket)
        assert (refused["type"], refused["error"]) == ("error", "forbidden")

        with live_api.client(asker) as c:
            r = c.post(f"/api/tickets/{ticket}/drafts", json={"language": "en"})
        assert r.status_code == 202, r.text
        draft = r.json()["draft"]
        frames, done = mine.until(lambda f: f.get("kind") == "done")
        assert frames[0]["kind"] == "started"
        assert (frames[0]["source"], frames[0]["model"]) == ("retrieval", "retrieval-v1")
        deltas = [f["text"] for f in frames if f["kind"] == "delta"]
        assert len(deltas) == 3  # greeting, the adapted reply, sign-off
        assert {f["type"] for f in frames} == {"draft"}
        assert {f["draft_id"] for f in [*frames, done]} == {draft["id"]}
        assert "".join(deltas) == done["text"] == draft["text"]
        assert f"Please hold the {topic} reset button for ten seconds." in done["text"]
        assert (done["status"], done["cached"], done["basis"][0]) == ("ready", False, past)
        theirs.quiet()  # the other agent's socket got nothing
        customers.quiet()
    finally:
        for ws in (mine, theirs, customers):
            ws.close()
