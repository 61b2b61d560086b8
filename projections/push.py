"""The push projector: which stored events become WebSocket frames, and who may receive them.

Pure logic over ports declared here. Every frame names its audience as a *group*:

- ``ticket.<id>``: everyone who may read the ticket (its customer and the staff);
- ``ticket.<id>.staff``: the staff only (internal notes);
- ``queue``: the staff's queue (tickets created, assignment and status changes);
- ``user.<id>``: one user's notifications (a reply on your ticket, a ticket assigned to you);
- ``presence``: agents' availability (the durable half of presence);
- ``push.sync``: the projector's heartbeat, which lets subscribers notice lost frames.

The same functions serve the live projector (``PushStore`` under the ``ProjectionRunner``) and
the replay a reconnecting client asks for, so both apply the same visibility rules. Nothing is
written to a database: the position lives in memory; frames carry ``(ticket id, version,
position)`` and subscribers drop duplicates, so publishing a batch twice is harmless.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from uuid import UUID

from domain.agent import Agent
from domain.ticket import Ticket, is_public
from projections import notifications
from projections.ports import Envelope, EventSource
from projections.runner import ProjectionRunner

NAME = "push"

QUEUE = "queue"
PRESENCE = "presence"
SYNC = "push.sync"
EXCERPT = 200  # characters of a message body in a notification
SYNC_SUMMARY_MAX = 5000  # groups listed in one heartbeat before it says "overflow"

Frame = dict[str, Any]


def ticket_group(ticket_id: UUID | str) -> str:
    return f"ticket.{ticket_id}"


def ticket_staff_group(ticket_id: UUID | str) -> str:
    return f"ticket.{ticket_id}.staff"


def user_group(user_id: str) -> str:
    return f"user.{user_id}"


@dataclass(frozen=True)
class Delivery:
    """One frame for one group (the same event may give different frames to several).

    ``prev`` is the position of the frame published before it to the same group, and
    ``family_prev`` to any group of the same ticket (public or staff), by this projector
    run. A subscriber that has not seen ``prev`` lost a frame: it catches up from the log
    before it delivers this one, so the client still gets them in order. ``floor``: this run
    published every frame of the log after it (None: unknown); a ``prev`` of None means no
    frame of the group since the floor, so a subscriber that has not got up to the floor
    cannot tell what it missed (a publisher that took over after another, ADR 0044) and
    catches up too.
    """

    group: str
    frame: Frame
    prev: int | None = None
    family_prev: int | None = None
    floor: int | None = None


def family(group: str) -> str:
    """A ticket's public and staff groups form one family (a staff subscription has both)."""
    return group.removesuffix(".staff")


class FramePublisher(Protocol):
    def publish(self, deliveries: Sequence[Delivery]) -> None:
        """Hand every delivery to its group's subscribers, in order; raise if that failed."""


class AggregateLog(Protocol):
    """One aggregate's stored events with their log positions (for replay and for facts)."""

    def read_aggregate(
        self,
        aggregate_id: UUID,
        *,
        after_version: int = 0,
        after_position: int = 0,
        until_version: int | None = None,
    ) -> Sequence[Envelope]: ...


# ------------------------------------------------------------------------------ who sees what
@dataclass(frozen=True)
class Viewer:
    user_id: str
    staff: bool


def ticket_groups(viewer: Viewer, ticket_id: UUID) -> tuple[str, ...]:
    """The groups of a ticket subscription: customers never join the internal-notes group."""
    if viewer.staff:
        return (ticket_group(ticket_id), ticket_staff_group(ticket_id))
    return (ticket_group(ticket_id),)


def ticket_customer(log: AggregateLog, ticket_id: UUID) -> str | None:
    """The ticket's customer (None: no such ticket). It never changes, so version 1 tells."""
    first = log.read_aggregate(ticket_id, until_version=1)
    if not first or not isinstance(first[0].event, Ticket.TicketOpened):
        return None
    return str(first[0].event.customer_id)


# ------------------------------------------------------------------------------ frames
def _frame(kind: str, envelope: Envelope, data: dict[str, Any]) -> Frame:
    return {
        "kind": kind,
        "ticket_id": str(envelope.aggregate_id),
        "version": envelope.version,
        "position": envelope.position,
        "time": envelope.event.timestamp.isoformat(),
        "data": data,
    }


def _actor(event: Any) -> dict[str, Any]:
    return {"actor_id": event.actor_id, "actor_role": event.actor_role}


def ticket_deliveries(envelope: Envelope, public_version: int | None = None) -> list[Delivery]:
    """The frames of a ticket event for its ticket groups and the staff queue. A frame for
    the ticket's group (its customer's too) carries ``public_version``, the ticket's version
    as its customer counts (``Ticket.public_version``): the socket of a customer sends that
    as the frame's ``version`` (``infra/realtime/consumer.py``), a staff member's the real
    one. None: not known here (a replay of groups other than the ticket's)."""
    deliveries = _ticket_deliveries(envelope)
    if public_version is None:
        return deliveries
    public = ticket_group(envelope.aggregate_id)
    return [
        replace(d, frame={**d.frame, "public_version": public_version}) if d.group == public else d
        for d in deliveries
    ]


def public_version_of(envelope: Envelope, before: _TicketFacts | None) -> int:
    """The ticket's public version with this event (``before``: the facts just before)."""
    return (before.public_version if before is not None else 0) + is_public(envelope.event)


def _ticket_deliveries(envelope: Envelope) -> list[Delivery]:
    event = envelope.event
    tid = envelope.aggregate_id
    public, queue = ticket_group(tid), QUEUE
    if isinstance(event, Ticket.TicketOpened):
        frame = _frame(
            "ticket_created",
            envelope,
            {
                "customer_id": event.customer_id,
                "subject": event.subject,
                "description": event.description,
                "priority": event.priority,
                "tags": list(event.tags),
                "language": event.language,
                "status": "open",
                **_actor(event),
            },
        )
        return [Delivery(public, frame), Delivery(queue, frame)]
    if isinstance(event, Ticket.MessagePosted):
        frame = _frame(
            "message_posted",
            envelope,
            {
                "message_id": str(event.message_id),
                "author_id": event.author_id,
                "author_role": event.author_role,
                "body": event.body,
                "internal": event.internal,
                "attachments": [dict(a) for a in event.attachments],
                "posted_at": event.timestamp.isoformat(),
            },
        )
        return [Delivery(ticket_staff_group(tid) if event.internal else public, frame)]
    if isinstance(event, Ticket.StatusChanged):
        frame = _frame(
            "status_changed",
            envelope,
            {
                "from_status": event.from_status,
                "to_status": event.to_status,
                "reason": event.reason,
                **_actor(event),
            },
        )
        return [Delivery(public, frame), Delivery(queue, frame)]
    if isinstance(event, Ticket.AgentAssigned):
        change = {
            "agent_id": event.agent_id,
            "previous_agent_id": event.previous_agent_id,
            "policy": event.policy,
        }
    elif isinstance(event, Ticket.AgentUnassigned):
        change = {"agent_id": None, "previous_agent_id": event.agent_id, "policy": None}
    else:
        change = {}
    if change:
        # The ticket's group includes its customer: automation's reason (staff workload) is
        # for the staff queue; the ticket's subscribers read the neutral one.
        staff_frame = _frame(
            "assignment_changed", envelope, {**change, "reason": event.reason, **_actor(event)}
        )
        public_frame = _frame(
            "assignment_changed",
            envelope,
            {**change, "reason": event.public_reason, **_actor(event)},
        )
        return [Delivery(public, public_frame), Delivery(queue, staff_frame)]
    if isinstance(event, Ticket.PriorityChanged):
        frame = _frame(
            "priority_changed",
            envelope,
            {
                "from_priority": event.from_priority,
                "to_priority": event.to_priority,
                **_actor(event),
            },
        )
        return [Delivery(public, frame)]
    if isinstance(event, Ticket.AttachmentUploaded):
        frame = _frame(
            "attachment_uploaded",
            envelope,
            {
                "attachment_id": str(event.attachment_id),
                "name": event.name,
                "content_type": event.content_type,
                "size": event.size,
                "message_id": str(event.message_id) if event.message_id else None,
                "internal": event.internal,
                "status": "scanning",
                **_actor(event),
            },
        )
        return [Delivery(ticket_staff_group(tid) if event.internal else public, frame)]
    if isinstance(event, Ticket.AttachmentScanned):
        frame = _frame(
            "attachment_scanned",
            envelope,
            {
                "attachment_id": str(event.attachment_id),
                "status": event.verdict,
                "message_id": str(event.message_id) if event.message_id else None,
                "internal": event.internal,
            },
        )
        return [Delivery(ticket_staff_group(tid) if event.internal else public, frame)]
    if isinstance(event, Ticket.TicketEdited):
        frame = _frame(
            "ticket_edited",
            envelope,
            {
                "subject": event.subject,
                "description": event.description,
                "tags": list(event.tags),
                **_actor(event),
            },
        )
        return [Delivery(public, frame)]
    if isinstance(event, Ticket.SlaBreached):
        # Staff only: the ticket's staff group and the queue (every agent and admin), which
        # also carries the admins' stored notification (``notifications.ADMINS``).
        frame = _frame(
            "sla_breached",
            envelope,
            {
                "target": event.target,
                "deadline": event.deadline.isoformat(),
                "breached_at": event.breached_at.isoformat(),
                "priority": event.priority,
                "policy": event.policy,
                "admins_notification_id": str(
                    notifications.notification_id(
                        envelope.position, notifications.ADMINS, notifications.SLA_BREACHED
                    )
                ),
                **_actor(event),
            },
        )
        return [Delivery(ticket_staff_group(tid), frame), Delivery(queue, frame)]
    return []


@dataclass
class _TicketFacts:
    version: int
    customer_id: str
    agent_id: str | None
    public_version: int = 0  # how many public events the ticket has had (its customer's)


class Facts:
    """What notifications need beyond the event itself: a ticket's customer and agent just
    before an event, an agent aggregate's user. Folded from the aggregate's own history on a
    miss (so the answer is the same live and in a replay), then kept up to date in order."""

    def __init__(self, log: AggregateLog, *, max_entries: int = 20_000) -> None:
        self._log = log
        self._max = max_entries
        self._tickets: OrderedDict[UUID, _TicketFacts] = OrderedDict()
        self._agents: OrderedDict[UUID, str] = OrderedDict()

    def ticket_before(self, envelope: Envelope) -> _TicketFacts | None:
        """The ticket's facts as of the version before ``envelope`` (None for its first)."""
        tid, version = envelope.aggregate_id, envelope.version
        if version <= 1:
            return None
        cached = self._tickets.get(tid)
        if cached is None or cached.version != version - 1:
            cached = None
            for past in self._log.read_aggregate(tid, until_version=version - 1):
                cached = _fold(cached, past)
            if cached is None:
                return None
            self._remember(self._tickets, tid, cached)
        return cached

    def observe(self, envelope: Envelope) -> None:
        """Fold an event in, once it has been handled."""
        if not isinstance(envelope.event, Ticket.Event):
            return
        tid = envelope.aggregate_id
        before = self._tickets.get(tid)
        if before is not None and before.version != envelope.version - 1:
            before = None  # out of step (a retry): reload on the next miss
            self._tickets.pop(tid, None)
            if envelope.version > 1:
                return
        facts = _fold(before, envelope)
        if facts is not None:
            self._remember(self._tickets, tid, facts)

    def agent_user(self, agent_id: UUID) -> str | None:
        user = self._agents.get(agent_id)
        if user is None:
            first = self._log.read_aggregate(agent_id, until_version=1)
            if first and isinstance(first[0].event, Agent.AgentRegistered):
                user = str(first[0].event.user_id)
                self._remember(self._agents, agent_id, user)
        return user

    def _remember(self, cache: OrderedDict[UUID, Any], key: UUID, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._max:
            cache.popitem(last=False)


def _fold(facts: _TicketFacts | None, envelope: Envelope) -> _TicketFacts | None:
    event = envelope.event
    if isinstance(event, Ticket.TicketOpened):
        return _TicketFacts(envelope.version, str(event.customer_id), None, 1)
    if facts is None:
        return None
    agent = facts.agent_id
    if isinstance(event, Ticket.AgentAssigned):
        agent = event.agent_id
    elif isinstance(event, Ticket.AgentUnassigned):
        agent = None
    return _TicketFacts(
        envelope.version, facts.customer_id, agent, public_version_of(envelope, facts)
    )


def notification_deliveries(envelope: Envelope, facts: Facts) -> list[Delivery]:
    """Notifications for the people a ticket event concerns, never for its own actor."""
    event = envelope.event
    if not isinstance(event, Ticket.Event) or isinstance(event, Ticket.TicketOpened):
        return []
    before = facts.ticket_before(envelope)
    if before is None:
        return []
    notes: list[tuple[str, dict[str, Any]]] = []  # (user id, data)
    if isinstance(event, Ticket.MessagePosted):
        data = {
            "reason": "new_message",
            "message_id": str(event.message_id),
            "author_id": event.author_id,
            "author_role": event.author_role,
            "internal": event.internal,
            "excerpt": event.body[:EXCERPT],
        }
        if not event.internal and event.author_id != before.customer_id:
            notes.append((before.customer_id, data))
        if before.agent_id and event.author_id != before.agent_id:
            notes.append((before.agent_id, data))
    elif isinstance(event, Ticket.StatusChanged):
        data = {
            "reason": "status_changed",
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor_id": event.actor_id,
        }
        for user in (before.customer_id, before.agent_id):
            if user and user != event.actor_id:
                notes.append((user, data))
    elif isinstance(event, Ticket.AgentAssigned):
        if event.agent_id != event.actor_id:
            notes.append(
                (event.agent_id, {"reason": "assigned_to_you", "actor_id": event.actor_id})
            )
        previous = event.previous_agent_id
        if previous and previous != event.actor_id:
            notes.append((previous, {"reason": "unassigned_from_you", "actor_id": event.actor_id}))
    elif isinstance(event, Ticket.SlaReminderDue | Ticket.SlaBreached):
        reason = "sla_reminder" if isinstance(event, Ticket.SlaReminderDue) else "sla_breached"
        if before.agent_id:
            notes.append(
                (
                    before.agent_id,
                    {"reason": reason, "target": event.target,
                     "deadline": event.deadline.isoformat()},
                )
            )  # fmt: skip
    elif isinstance(event, Ticket.AgentUnassigned) and event.agent_id != event.actor_id:
        notes.append(
            (event.agent_id, {"reason": "unassigned_from_you", "actor_id": event.actor_id})
        )
    seen: set[str] = set()
    deliveries = []
    for user, data in notes:
        if user not in seen:
            seen.add(user)
            # The frame names the stored in-app notification (id and kind, ADR 0012).
            data = {**data, **notifications.pushed(envelope.position, user, data)}
            frame = _frame("notification", envelope, data)
            if user == before.customer_id:  # the customer counts public versions only
                frame["version"] = public_version_of(envelope, before)
            deliveries.append(Delivery(user_group(user), frame))
    return deliveries


def presence_deliveries(envelope: Envelope, facts: Facts) -> list[Delivery]:
    """An agent's availability command, for the live presence of the team."""
    event = envelope.event
    if not isinstance(event, Agent.AvailabilityChanged):
        return []
    user = facts.agent_user(envelope.aggregate_id)
    if user is None:
        return []
    frame = {
        "kind": "availability_changed",
        "user_id": user,
        "availability": event.to_availability,
        "version": envelope.version,
        "position": envelope.position,
    }
    return [Delivery(PRESENCE, frame)]


def all_deliveries(envelope: Envelope, facts: Facts) -> list[Delivery]:
    """Everything the live projector publishes for one event."""
    public_version = None
    if isinstance(envelope.event, Ticket.Event):
        public_version = public_version_of(envelope, facts.ticket_before(envelope))
    deliveries = ticket_deliveries(envelope, public_version)
    deliveries += notification_deliveries(envelope, facts)
    deliveries += presence_deliveries(envelope, facts)
    facts.observe(envelope)
    return deliveries


# ------------------------------------------------------------------------------ replay
class ReplayTooLongError(Exception):
    """Resuming would mean scanning more of the log than allowed: refetch, then resubscribe."""

    def __init__(self, after: int, head: int) -> None:
        super().__init__(f"{head - after} positions to replay")
        self.after = after
        self.head = head


@dataclass
class Replay:
    deliveries: list[Delivery]
    head: int  # everything up to here has been looked at


def replay_ticket(
    source: EventSource,
    log: AggregateLog,
    ticket_id: UUID,
    groups: Sequence[str],
    *,
    after_position: int = 0,
    after_version: int = 0,
    public: bool = False,
) -> Replay:
    """A ticket's frames for ``groups`` after a position or version, from its own events.
    ``public``: ``after_version`` is a public version (a customer's, ``Ticket.public_version``):
    the frames are those of the public events after the ``after_version``-th."""
    head = source.head()  # read first: every event up to it is visible to the next query
    wanted = set(groups)
    deliveries = []
    counted = 0  # the ticket's public version so far: its events are read from the first
    for envelope in log.read_aggregate(ticket_id):
        shown = is_public(envelope.event)
        counted += shown
        if envelope.position <= after_position:
            continue
        if public and (not shown or counted <= after_version):
            continue  # a customer's: the public events after their version only
        if not public and envelope.version <= after_version:
            continue
        deliveries += [d for d in ticket_deliveries(envelope, counted) if d.group in wanted]
    top = max((d.frame["position"] for d in deliveries), default=0)
    return Replay(deliveries, max(head, top))


def replay_log(
    source: EventSource,
    log: AggregateLog,
    groups: Sequence[str],
    *,
    after_position: int,
    max_span: int,
    batch_size: int = 1000,
    head: int | None = None,
    scan: int | None = None,
) -> Replay:
    """Frames for ``groups`` (queue, notifications) after a position, scanning the global log
    up to ``head`` (the log's head now when not given). ``scan``: look at no more than this
    many positions in this call; the answer's ``head`` says how far it got, and a caller
    streaming a long replay calls again from there with the same ``head``."""
    head = source.head() if head is None else head
    if head - after_position > max_span:
        raise ReplayTooLongError(after_position, head)
    stop = head if scan is None else min(head, after_position + scan)
    wanted = set(groups)
    facts = Facts(log)
    needs_facts = any(g.startswith("user.") for g in wanted)
    deliveries: list[Delivery] = []
    position = after_position
    while position < stop:
        envelopes = source.read(position, batch_size)
        if not envelopes:
            break
        for envelope in envelopes:
            if envelope.position > stop:
                return Replay(deliveries, stop)
            found = ticket_deliveries(envelope)
            if needs_facts:
                found += notification_deliveries(envelope, facts)
                facts.observe(envelope)
            deliveries += [d for d in found if d.group in wanted]
        position = envelopes[-1].position
    return Replay(deliveries, stop)


# ------------------------------------------------------------------------------ live projector
@dataclass
class PushCounters:
    """What a push projector did, for the fan-out counters (docs/realtime.md): events it
    turned into frames, and group messages it published (one per frame and group, however
    many sockets and server processes then deliver it)."""

    events: int = 0
    published: int = 0
    publishing: bool = False  # a projector of this process is running (the leader's is)


@dataclass
class PushBatch:
    position: int
    store: PushStore
    published: list[Delivery] = field(default_factory=list)
    events: int = 0

    def apply(self, envelopes: Sequence[Envelope]) -> None:
        fresh = [e for e in envelopes if e.position > self.position]
        if not fresh:
            return
        deliveries = self.store.chain(
            [d for e in fresh for d in all_deliveries(e, self.store.facts)]
        )
        if deliveries:
            self.store.publisher.publish(deliveries)
        self.published = deliveries
        self.events = len(fresh)
        self.position = fresh[-1].position


class PushStore:
    """The push projector's ``ProjectionStore``: its position is in memory only.

    It starts at the head of the log: clients that connect later replay what they missed
    from the log themselves. A batch whose publishing fails is not advanced past, so the
    runner publishes it again (subscribers drop the duplicates by position).

    ``floor`` starts at that head and rises when the newest position of a group is forgotten
    (more than ``max_groups`` groups): a frame without ``prev`` then says "nothing of this
    group was published since the floor", which is true (``Delivery``).
    """

    name = NAME

    def __init__(
        self,
        publisher: FramePublisher,
        log: AggregateLog,
        *,
        start: int,
        max_groups: int = 100_000,
        counters: PushCounters | None = None,
    ) -> None:
        self.publisher = publisher
        self.facts = Facts(log)
        self._position = start
        self.floor = start
        self.counters = counters if counters is not None else PushCounters()
        self._max_groups = max_groups
        self._last: OrderedDict[str, int] = OrderedDict()  # group -> newest position published
        self._last_family: OrderedDict[str, int] = OrderedDict()
        self._since_sync: dict[str, int] = {}
        self._overflow = False
        self._epoch = uuid.uuid4().hex
        self._seq = 0
        self._lock = threading.Lock()

    def position(self) -> int:
        return self._position

    @contextmanager
    def batch(self) -> Iterator[PushBatch]:
        with self._lock:
            batch = PushBatch(self._position, self)
            yield batch
            self._position = batch.position
            self.counters.events += batch.events
            self.counters.published += len(batch.published)
            for d in batch.published:
                position = d.frame["position"]
                self._remember(self._last, d.group, position)
                self._remember(self._last_family, family(d.group), position)
                if len(self._since_sync) < SYNC_SUMMARY_MAX or d.group in self._since_sync:
                    self._since_sync[d.group] = position
                else:
                    self._overflow = True

    def chain(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Give each delivery the position of the previous frame in its group and family."""
        last: dict[str, int | None] = {}
        last_family: dict[str, int | None] = {}
        chained = []
        for d in deliveries:
            fam = family(d.group)
            prev = last[d.group] if d.group in last else self._last.get(d.group)
            fprev = last_family[fam] if fam in last_family else self._last_family.get(fam)
            chained.append(replace(d, prev=prev, family_prev=fprev, floor=self.floor))
            last[d.group] = last_family[fam] = d.frame["position"]
        return chained

    def _remember(self, cache: OrderedDict[str, int], key: str, position: int) -> None:
        cache[key] = position
        cache.move_to_end(key)
        if len(cache) > self._max_groups:
            _, forgotten = cache.popitem(last=False)
            self.floor = max(self.floor, forgotten)

    def sync(self) -> None:
        """Publish the heartbeat: the position reached, a sequence number per projector run
        (a jump means heartbeats were lost), and the newest position published to each group
        since the last heartbeat (a subscriber that lacks one lost a frame)."""
        with self._lock:
            frame = {
                "kind": "sync",
                "position": self._position,
                "epoch": self._epoch,
                "seq": self._seq + 1,
                "floor": self.floor,
                "groups": dict(self._since_sync),
                "overflow": self._overflow,
            }
            self.publisher.publish([Delivery(SYNC, frame, floor=self.floor)])
            self._seq += 1
            self._since_sync = {}
            self._overflow = False


def follow(
    source: EventSource,
    store: PushStore,
    stop: threading.Event,
    *,
    sync_interval: float,
    batch_size: int = 1000,
    idle_timeout: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Publish frames for new events as they are stored, and a heartbeat every interval."""
    runner = ProjectionRunner(source, store, batch_size=batch_size)
    next_sync = clock()
    while not stop.is_set():
        applied = runner.step()
        now = clock()
        if now >= next_sync:
            store.sync()
            next_sync = now + sync_interval
        if applied < batch_size:
            # A batch that was not full read up to the head it saw: wait rather than read
            # again to find nothing (the wait returns at once if more came meanwhile). One
            # read of the log per wake-up instead of two (ADR 0022).
            source.wait(store.position(), max(min(idle_timeout, next_sync - now), 0.01))
