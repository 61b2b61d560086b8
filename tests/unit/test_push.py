"""The push projector's logic: audiences, notifications, the prev chain, the heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from uuid import UUID

import pytest

from domain.agent import Agent
from domain.lifecycle import Role
from domain.ticket import Ticket
from projections import push
from projections.runner import ProjectionRunner
from tests.support.fake_log import FakeEventLog


class Publisher:
    def __init__(self) -> None:
        self.sent: list[push.Delivery] = []
        self.fail = False

    def publish(self, deliveries: Sequence[push.Delivery]) -> None:
        if self.fail:
            raise ConnectionError("layer down")
        self.sent += deliveries


@pytest.fixture
def log() -> FakeEventLog:
    return FakeEventLog()


def opened(log: FakeEventLog, customer: str = "5") -> Ticket:
    ticket = Ticket.open(
        customer_id=customer,
        subject="Printer",
        description="on fire",
        actor_id=customer,
        actor_role=Role.CUSTOMER,
    )
    log.append(ticket)
    return ticket


def groups(deliveries: Sequence[push.Delivery]) -> list[tuple[str, str]]:
    return [(d.group, d.frame["kind"]) for d in deliveries]


def test_each_ticket_event_goes_to_the_groups_allowed_to_see_it(log: FakeEventLog) -> None:
    ticket = opened(log)
    tid = ticket.id
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="VIP", internal=True)
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="Hello")
    ticket.assign(agent_id="2", actor_id="2", actor_role=Role.AGENT)
    log.append(ticket)
    found = [groups(push.ticket_deliveries(e)) for e in log.envelopes]
    public, staff = f"ticket.{tid}", f"ticket.{tid}.staff"
    assert found == [
        [(public, "ticket_created"), ("queue", "ticket_created")],
        [(staff, "message_posted")],
        [(public, "message_posted")],
        [(public, "assignment_changed"), ("queue", "assignment_changed")],
        [(public, "status_changed"), ("queue", "status_changed")],
    ]
    frame = push.ticket_deliveries(log.envelopes[2])[0].frame
    assert (frame["ticket_id"], frame["version"], frame["position"]) == (str(tid), 3, 3)
    assert push.ticket_groups(push.Viewer("5", staff=False), tid) == (public,)
    assert push.ticket_groups(push.Viewer("2", staff=True), tid) == (public, staff)


def test_notifications_reach_the_people_concerned_never_the_actor(log: FakeEventLog) -> None:
    ticket = opened(log, customer="5")
    log.append(ticket)
    ticket.assign(agent_id="2", actor_id="9", actor_role=Role.ADMIN)
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="Which printer?")
    ticket.post_message(author_id="5", author_role=Role.CUSTOMER, body="The big one")
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="note", internal=True)
    ticket.assign(agent_id="3", actor_id="3", actor_role=Role.AGENT)
    log.append(ticket)
    facts = push.Facts(log)  # cold: facts are folded from the log on the first miss
    found = []
    for e in log.envelopes:
        for d in push.notification_deliveries(e, facts):
            found.append((e.version, d.group, d.frame["data"]["reason"]))
        facts.observe(e)
    assert found == [
        (2, "user.2", "assigned_to_you"),
        (3, "user.5", "status_changed"),
        (3, "user.2", "status_changed"),
        (4, "user.5", "new_message"),
        (5, "user.2", "new_message"),
        (7, "user.2", "unassigned_from_you"),
    ]


def test_a_cold_projector_gets_facts_from_the_aggregates_history(log: FakeEventLog) -> None:
    ticket = opened(log, customer="5")
    ticket.assign(agent_id="2", actor_id="2", actor_role=Role.AGENT)
    log.append(ticket)
    ticket.post_message(author_id="5", author_role=Role.CUSTOMER, body="Any news?")
    [reply] = log.append(ticket)
    notes = push.notification_deliveries(reply, push.Facts(log))
    assert [(d.group, d.frame["data"]["excerpt"]) for d in notes] == [("user.2", "Any news?")]


def test_availability_changes_are_published_for_presence(log: FakeEventLog) -> None:
    agent = Agent.register(user_id="2", name="Ada")
    agent.set_availability("away")
    log.append(agent)
    deliveries = push.presence_deliveries(log.envelopes[1], push.Facts(log))
    assert [(d.group, d.frame["user_id"], d.frame["availability"]) for d in deliveries] == [
        ("presence", "2", "away")
    ]


def test_the_store_chains_frames_and_does_not_advance_past_a_failed_publish(
    log: FakeEventLog,
) -> None:
    ticket = opened(log)
    publisher = Publisher()
    store = push.PushStore(publisher, log, start=0)
    runner = ProjectionRunner(log, store)
    runner.step()
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="note", internal=True)
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="reply")
    log.append(ticket)
    publisher.fail = True
    with suppress(ConnectionError):
        runner.step()
    assert store.position() == 1  # not advanced: the runner publishes the batch again
    publisher.fail = False
    runner.step()
    assert store.position() == 3
    chain = [
        (d.group.rsplit(".", 1)[-1], d.frame["position"], d.prev, d.family_prev)
        for d in publisher.sent
        if d.group.startswith("ticket.")
    ]
    tid = str(ticket.id)
    assert chain == [
        (tid, 1, None, None),
        ("staff", 2, None, 1),  # first staff frame; the family saw position 1
        (tid, 3, 1, 2),
    ]
    store.sync()
    store.sync()
    first, second = [d.frame for d in publisher.sent if d.group == push.SYNC]
    assert (first["position"], first["seq"], second["seq"]) == (3, 1, 2)
    assert first["groups"] == {
        "queue": 1,
        f"ticket.{tid}.staff": 2,
        f"ticket.{tid}": 3,
        "user.5": 3,
    }
    assert second["groups"] == {}


def test_a_run_names_its_floor_raises_it_when_it_forgets_a_group_and_counts_its_work(
    log: FakeEventLog,
) -> None:
    """A publisher that starts (or takes over) at the head covers the log after it: frames
    without ``prev`` carry that floor, and a forgotten group's newest position raises it."""
    first, second, third = opened(log), opened(log), opened(log)
    counters = push.PushCounters()
    publisher = Publisher()
    store = push.PushStore(publisher, log, start=1, max_groups=2, counters=counters)
    ProjectionRunner(log, store).step()
    assert [(d.frame["position"], d.group, d.prev, d.floor) for d in publisher.sent] == [
        (2, f"ticket.{second.id}", None, 1),
        (2, "queue", None, 1),
        (3, f"ticket.{third.id}", None, 1),
        (3, "queue", 2, 1),
    ]
    assert first.id not in {d.frame["ticket_id"] for d in publisher.sent}
    # Three groups for two places: ticket.<second> (newest 2) is forgotten.
    assert store.floor == 2
    assert (counters.events, counters.published) == (2, 4)
    store.sync()
    assert publisher.sent[-1].frame["floor"] == 2


def test_replays_apply_the_same_visibility(log: FakeEventLog) -> None:
    ticket = opened(log)
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="secret", internal=True)
    ticket.post_message(author_id="2", author_role=Role.AGENT, body="public")
    log.append(ticket)
    customer = push.ticket_groups(push.Viewer("5", staff=False), ticket.id)
    replay = push.replay_ticket(log, log, ticket.id, customer, after_position=1)
    assert [d.frame["data"]["body"] for d in replay.deliveries] == ["public"]
    assert replay.head == 3
    queue = push.replay_log(log, log, ["queue"], after_position=0, max_span=100)
    assert [d.frame["kind"] for d in queue.deliveries] == ["ticket_created"]
    with pytest.raises(push.ReplayTooLongError):
        push.replay_log(log, log, ["queue"], after_position=0, max_span=2)
    assert push.ticket_customer(log, ticket.id) == "5"
    assert push.ticket_customer(log, UUID(int=1)) is None


def test_attachment_frames_reach_only_those_who_may_see_the_file(log: FakeEventLog) -> None:
    from uuid import uuid4

    from domain.attachment import AttachmentLimits

    ticket = opened(log)
    tid = ticket.id
    limits = AttachmentLimits()
    public_file, staff_file = uuid4(), uuid4()
    for file_id, actor, role, internal in (
        (public_file, "5", Role.CUSTOMER, False),
        (staff_file, "2", Role.AGENT, True),
    ):
        ticket.upload_attachment(
            attachment_id=file_id, name="a.png", content_type="image/png", size=3,
            message_id=None, internal=internal, actor_id=actor, actor_role=role, limits=limits,
        )  # fmt: skip
    for file_id in (public_file, staff_file):
        ticket.record_attachment_scan(
            attachment_id=file_id, verdict="clean", signature="", actor_id="scanner",
            actor_role=Role.SYSTEM,
        )  # fmt: skip
    log.append(ticket)
    found = [groups(push.ticket_deliveries(e)) for e in log.envelopes[1:]]
    public, staff = f"ticket.{tid}", f"ticket.{tid}.staff"
    assert found == [
        [(public, "attachment_uploaded")],
        [(staff, "attachment_uploaded")],
        [(public, "attachment_scanned")],
        [(staff, "attachment_scanned")],
    ]
    frame = push.ticket_deliveries(log.envelopes[3])[0].frame
    assert frame["data"] == {
        "attachment_id": str(public_file),
        "status": "clean",
        "message_id": None,
        "internal": False,
    }


def test_public_group_frames_carry_the_customers_count_live_and_in_replays(
    log: FakeEventLog,
) -> None:
    """Issue 21: the frames the customer may get carry the ticket's public version (internal
    notes not counted), live and replayed alike; staff-only frames carry none."""
    ticket = opened(log)
    for body in ("one", "two"):
        ticket.post_message(author_id="2", author_role=Role.AGENT, body="n", internal=True)
        ticket.post_message(author_id="2", author_role=Role.AGENT, body=body)
    log.append(ticket)
    publisher = Publisher()
    store = push.PushStore(publisher, log, start=0)
    ProjectionRunner(log, store).step()
    public = push.ticket_group(ticket.id)
    live = [(d.frame["version"], d.frame.get("public_version")) for d in publisher.sent
            if d.group == public]  # fmt: skip
    assert live == [(1, 1), (3, 2), (5, 3)]
    staff = [d.frame for d in publisher.sent if d.group == push.ticket_staff_group(ticket.id)]
    assert [("public_version" in f, f["version"]) for f in staff] == [(False, 2), (False, 4)]
    customer = push.ticket_groups(push.Viewer("5", staff=False), ticket.id)
    replayed = push.replay_ticket(log, log, ticket.id, customer, after_version=2, public=True)
    assert [(d.frame["data"]["body"], d.frame["public_version"]) for d in replayed.deliveries] == [
        ("two", 3)
    ]
    everything = push.replay_ticket(log, log, ticket.id, customer, after_position=0)
    assert [d.frame for d in everything.deliveries] == [
        d.frame for d in publisher.sent if d.group == public
    ]
    # Staff resume by the real version: after v2, the public v3 and v5 (and the notes).
    staff_groups = push.ticket_groups(push.Viewer("2", staff=True), ticket.id)
    by_real = push.replay_ticket(log, log, ticket.id, staff_groups, after_version=2)
    assert [d.frame["version"] for d in by_real.deliveries] == [3, 4, 5]


def test_a_replay_read_in_windows_equals_the_replay_read_at_once(log: FakeEventLog) -> None:
    """The socket streams a queue/notification replay window by window (``scan``, with the
    head fixed at the start): the windows together are the whole replay, in order."""
    tickets = [opened(log) for _ in range(3)]
    for n in range(4):
        for ticket in tickets:
            ticket.post_message(author_id="2", author_role=Role.AGENT, body=f"m{n}")
            log.append(ticket)
    groups = ["queue", "user.5"]
    whole = push.replay_log(log, log, groups, after_position=0, max_span=100)
    head = whole.head
    assert head == 15
    windows: list[push.Delivery] = []
    through = 0
    while through < head:
        part = push.replay_log(
            log, log, groups, after_position=through, max_span=100, head=head, scan=4
        )
        assert through < part.head <= min(head, through + 4)
        windows += part.deliveries
        through = part.head
    assert [(d.group, d.frame) for d in windows] == [(d.group, d.frame) for d in whole.deliveries]
    assert {d.group for d in whole.deliveries} == {"queue", "user.5"}
    with pytest.raises(push.ReplayTooLongError):  # the span counts to the head given
        push.replay_log(log, log, groups, after_position=0, max_span=10, head=head, scan=4)
