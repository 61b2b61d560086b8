"""The analytics fold's per-ticket fields, from a real ticket's events."""

from __future__ import annotations

import itertools

from domain.lifecycle import Role
from domain.ticket import Ticket
from projections import analytics
from projections.ports import Envelope


def test_a_tickets_team_follows_team_changed() -> None:
    staff = {"actor_id": "agent-1", "actor_role": Role.AGENT}
    ticket = Ticket.open(
        customer_id="c-1",
        subject="Invoice twice",
        description="Charged twice.",
        actor_id="c-1",
        actor_role=Role.CUSTOMER,
    )
    ticket.set_team(team_id="team-billing", **staff)
    ticket.post_message(author_id="agent-1", author_role=Role.AGENT, body="Refunded.")
    ticket.set_team(team_id=None, **staff)
    positions = itertools.count(1)
    current = None
    teams = []
    for event in ticket.collect_events():
        folded = analytics.fold(Envelope(next(positions), event), current)
        assert folded is not None
        fact, current = folded
        teams.append((fact.event_type, fact.team))
    assert teams == [
        ("TicketOpened", ""),
        ("TeamChanged", "team-billing"),
        ("MessagePosted", "team-billing"),
        ("TeamChanged", ""),
    ]
    assert current is not None
    assert current.team == ""
