"""Collision detection ("Ada is viewing", ADR 0046) over real WebSockets, across two server
processes sharing Redis: relayed to the ticket's other staff only, never stored, refused to
customers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_realtime import WS, open_ticket, people  # noqa: F401  (a fixture)
from tests.e2e.test_realtime_fanout import Cluster
from tests.support.redis import redis_url


@pytest.fixture(scope="module")
def pair(django_db_setup: Any) -> Iterator[Cluster]:
    started = Cluster(redis_url())
    yield started
    started.stop()


def test_staff_see_who_else_views_a_ticket_across_processes(
    pair: Cluster,
    people: Any,  # noqa: F811
) -> None:
    one, two = pair.grow(2)
    _, customer = people("customer")
    ada_user, ada = people("agent")
    _, bob = people("agent")
    ticket = open_ticket(one, customer)
    c_ws, a_ws, b_ws = WS(one, customer), WS(one, ada), WS(two, bob)
    for ws in (c_ws, a_ws, b_ws):
        ws.subscribe(stream="ticket", ticket_id=ticket["id"])

    a_ws.send(type="viewing", ticket_id=ticket["id"])
    _, seen = b_ws.until(lambda f: f["type"] == "viewing")
    assert seen == {
        "type": "viewing",
        "ticket_id": ticket["id"],
        "user_id": str(ada_user.pk),
        "name": ada_user.first_name,
        "sub": f"ticket:{ticket['id']}",
    }
    a_ws.quiet()  # the sender does not hear itself
    c_ws.quiet()  # nor does the customer
    c_ws.send(type="viewing", ticket_id=ticket["id"])
    assert c_ws.recv()["error"] == "forbidden"
    b_ws.send(type="viewing", ticket_id="8d2f8f6e-0000-4000-8000-000000000000")
    assert b_ws.recv()["error"] == "not_subscribed"
    with one.client(ada) as c:  # not stored
        history = c.get(f"/api/tickets/{ticket['id']}/history").json()["events"]
    assert [e["type"] for e in history] == ["TicketOpened"]
    for ws in (c_ws, a_ws, b_ws):
        ws.close()
