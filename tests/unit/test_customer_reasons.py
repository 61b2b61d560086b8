"""The automatic assignment explains itself with staff workload ("least loaded: 6/200 open,
..."): staff read that reason, the ticket's customer reads a neutral one, in the history and
in the ticket's WebSocket frames (issue 21)."""

from __future__ import annotations

from command_api.presenters import present_history
from domain.lifecycle import Role
from domain.ticket import Ticket
from projections import push
from tests.support.fake_log import FakeEventLog

WORKLOAD = "least loaded: 6/200 open, no skill required, language en, online"


def worked_ticket() -> tuple[Ticket, FakeEventLog]:
    log = FakeEventLog()
    ticket = Ticket.open(
        customer_id="5", subject="Printer", description="", actor_id="5", actor_role=Role.CUSTOMER
    )
    ticket.assign(
        agent_id="2", actor_id="system", actor_role=Role.SYSTEM, policy="least_loaded",
        reason=WORKLOAD,
    )  # fmt: skip
    ticket.unassign(actor_id="system", actor_role=Role.SYSTEM, reason="agent 2 went offline")
    ticket.assign(agent_id="3", actor_id="3", actor_role=Role.AGENT, reason="I know this one")
    log.append(ticket)
    return ticket, log


def reasons(entries: list[dict[str, object]]) -> list[object]:
    return [e["data"]["reason"] for e in entries if "Agent" in str(e["type"])]  # type: ignore[index]


def test_the_history_gives_customers_a_neutral_reason_for_automatic_assignment() -> None:
    _, log = worked_ticket()
    events = [e.event for e in log.envelopes]
    assert reasons(present_history(events, include_internal=True)) == [
        WORKLOAD,
        "agent 2 went offline",
        "I know this one",
    ]
    assert reasons(present_history(events, include_internal=False)) == [
        "assigned automatically",
        "unassigned automatically",
        "I know this one",
    ]


def test_the_tickets_frames_carry_the_neutral_reason_the_staff_queue_the_real_one() -> None:
    ticket, log = worked_ticket()
    public = push.ticket_group(ticket.id)
    seen: dict[str, list[str]] = {public: [], push.QUEUE: []}
    for envelope in log.envelopes:
        for d in push.ticket_deliveries(envelope):
            if d.frame["kind"] == "assignment_changed":
                seen[d.group].append(d.frame["data"]["reason"])
    assert seen == {
        public: ["assigned automatically", "unassigned automatically", "I know this one"],
        push.QUEUE: [WORKLOAD, "agent 2 went offline", "I know this one"],
    }
