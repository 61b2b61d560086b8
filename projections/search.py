"""The search projector and the search port: what is searchable, and how it is asked.

Pure logic: ``handle`` turns ticket events into search documents through the ``SearchState``
port (one document per ticket, per message and per customer; every document of a ticket
carries the ticket's filter fields). The query side is ``SearchIndex.search(SearchQuery)``.
Adapters: ``infra.postgres.search`` (PostgreSQL full text, the embedded default) and
``infra.opensearch.search`` (OpenSearch); both pass ``tests/contracts/test_search_contract.py``.

The projector tells events apart by their stored topics (explicit and stable by design,
see ``domain.ticket``) rather than by importing the aggregate: the read API imports this
module for the query types, and the read side must never reach the aggregates.

Documents are plain dicts with the keys of ``DOC_FIELDS``. Their text has three weights:
``title`` (a ticket's subject, a customer's name) ranks above ``body`` (a ticket's
description, a message's body) above ``metadata`` (the customer's name, e-mail, company and
phone on their tickets; e-mail, company and phone on the customer's own document).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.lifecycle import Role, Status
from projections.ports import Envelope

NAME = "search"

TICKET, MESSAGE, CUSTOMER = "ticket", "message", "customer"
KINDS: tuple[str, ...] = (TICKET, MESSAGE, CUSTOMER)
NO_AGENT = "none"  # the ``agent`` filter value for "not assigned"
MAX_PAGE_SIZE = 50

Doc = dict[str, Any]

# The stored topics of the ticket events (a contract test checks them against domain.ticket).
TICKET_TOPICS = "deskstream.ticket:"
TICKET_OPENED = "deskstream.ticket:TicketOpened"
MESSAGE_POSTED = "deskstream.ticket:MessagePosted"
STATUS_CHANGED = "deskstream.ticket:StatusChanged"
AGENT_ASSIGNED = "deskstream.ticket:AgentAssigned"
AGENT_UNASSIGNED = "deskstream.ticket:AgentUnassigned"
PRIORITY_CHANGED = "deskstream.ticket:PriorityChanged"
TICKET_EDITED = "deskstream.ticket:TicketEdited"

DOC_FIELDS = (
    "key",  # "<kind>:<id>", unique
    "kind",
    "ticket_id",  # None for customer documents
    "customer_id",
    "internal",  # an internal note (messages only)
    "title",
    "body",
    "metadata",
    # The ticket's filter fields (None / [] on customer documents):
    "status",
    "priority",
    "assigned_agent_id",
    "tags",
    "created_at",  # the ticket's; on a customer document, when their first ticket was opened
    "updated_at",  # the ticket's last change; on a customer document, their latest ticket
    "occurred_at",  # when this thing happened: ticket opened, message posted, customer seen
)
# The fields ``set_ticket_fields`` may change (on every document of the ticket).
TICKET_FIELDS = frozenset({"status", "priority", "assigned_agent_id", "tags", "updated_at"})


@dataclass(frozen=True)
class CustomerInfo:
    """A customer's searchable metadata (customers are accounts, not event-sourced)."""

    name: str
    email: str
    company: str = ""
    phone: str = ""

    def text(self, *, with_name: bool = True) -> str:
        parts = [self.name] if with_name else []
        parts += [self.email, self.company, self.phone]
        return " ".join(p for p in parts if p)


class SearchState(Protocol):
    """The projector's view of the search index during one batch."""

    def ticket(self, ticket_id: UUID) -> Doc | None:
        """The ticket's own document, as the state holds it: read it, never change it (change
        it through ``upsert_ticket`` and ``set_ticket_fields``)."""

    def upsert_ticket(self, doc: Doc) -> None:
        """Create or replace the ticket's own document (its text changed). The state keeps
        ``doc`` itself: hand over a new dict, and do not change it afterwards."""

    def add_message(self, doc: Doc) -> None:
        """Index a message. The state keeps ``doc`` itself, as ``upsert_ticket`` does."""

    def set_ticket_fields(self, ticket_id: UUID, **fields: Any) -> None:
        """Change filter fields (``TICKET_FIELDS``) on every document of the ticket."""

    def customer(self, customer_id: str) -> CustomerInfo | None:
        """The customer's current metadata, or None for an unknown customer id."""

    def upsert_customer(self, doc: Doc) -> None:
        """Create or refresh the customer's document, as ``merge_customer`` merges it with
        the one stored or held: the same whatever order their tickets' events come in."""


def merge_customer(held: Doc | None, doc: Doc) -> Doc:
    """A customer's document seen again (``doc``, with the customer's current metadata) merged
    with the one held before: ``created_at`` and ``occurred_at`` of their first ticket, and
    ``updated_at`` of their latest, by the tickets' own times, not by the order their
    events arrive. On Kafka a ticket's events come in order but two tickets in different
    partitions do not (issue 24: a live build and a rebuild gave one customer different
    times). Commutative and idempotent, so re-deliveries change nothing either."""
    if held is None:
        return doc
    first = held if held["created_at"] <= doc["created_at"] else doc
    return {
        **doc,
        "created_at": first["created_at"],
        "occurred_at": first["occurred_at"],
        "updated_at": max(held["updated_at"], doc["updated_at"]),
    }


# ---------------------------------------------------------------------------- projector
def handle(envelope: Envelope, state: SearchState) -> None:
    event = envelope.event
    topic = getattr(type(event), "TOPIC", "")
    if not topic.startswith(TICKET_TOPICS):
        return  # agents are not searchable (yet); the position still advances
    if topic == TICKET_OPENED:
        _opened(event, state)
        return
    ticket_id: UUID = event.originator_id
    doc = state.ticket(ticket_id)
    if doc is None:  # pragma: no cover - the log always starts a ticket with TicketOpened
        return
    at: datetime = event.timestamp
    if topic == MESSAGE_POSTED:
        state.add_message(
            {
                **doc,  # a ticket document has exactly the keys of DOC_FIELDS
                "key": f"{MESSAGE}:{event.message_id}",
                "kind": MESSAGE,
                "internal": bool(event.internal),
                "title": "",  # a message has no title; hits show their ticket's subject
                "body": event.body,
                "metadata": "",
                "updated_at": at,
                "occurred_at": at,
            }
        )
        state.set_ticket_fields(ticket_id, updated_at=at)
    elif topic == STATUS_CHANGED:
        state.set_ticket_fields(ticket_id, status=event.to_status, updated_at=at)
    elif topic == AGENT_ASSIGNED:
        state.set_ticket_fields(ticket_id, assigned_agent_id=event.agent_id, updated_at=at)
    elif topic == AGENT_UNASSIGNED:
        state.set_ticket_fields(ticket_id, assigned_agent_id=None, updated_at=at)
    elif topic == PRIORITY_CHANGED:
        state.set_ticket_fields(ticket_id, priority=event.to_priority, updated_at=at)
    elif topic == TICKET_EDITED:
        state.upsert_ticket({**doc, "title": event.subject, "body": event.description})
        state.set_ticket_fields(ticket_id, tags=list(event.tags), updated_at=at)
    else:
        state.set_ticket_fields(ticket_id, updated_at=at)


def _opened(event: Any, state: SearchState) -> None:
    customer = state.customer(event.customer_id)
    at: datetime = event.timestamp
    state.upsert_ticket(
        {
            "key": f"{TICKET}:{event.originator_id}",
            "kind": TICKET,
            "ticket_id": event.originator_id,
            "customer_id": event.customer_id,
            "internal": False,
            "title": event.subject,
            "body": event.description,
            "metadata": customer.text() if customer else "",
            "status": Status.OPEN.value,
            "priority": event.priority,
            "assigned_agent_id": None,
            "tags": list(event.tags),
            "created_at": at,
            "updated_at": at,
            "occurred_at": at,
        }
    )
    if customer is not None:
        state.upsert_customer(
            {
                "key": f"{CUSTOMER}:{event.customer_id}",
                "kind": CUSTOMER,
                "ticket_id": None,
                "customer_id": event.customer_id,
                "internal": False,
                "title": customer.name,
                "body": "",
                "metadata": customer.text(with_name=False),
                "status": None,
                "priority": None,
                "assigned_agent_id": None,
                "tags": [],
                "created_at": at,
                "updated_at": at,
                "occurred_at": at,
            }
        )


# ---------------------------------------------------------------------------- query side
@dataclass(frozen=True)
class Principal:
    """Who is searching: staff search everything, anyone else only their own tickets."""

    role: Role
    user_id: str

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.AGENT, Role.ADMIN)


@dataclass(frozen=True)
class SearchQuery:
    """One search. Filters narrow tickets and messages the way the ticket list does; customer
    documents carry no ticket fields, so any ticket filter leaves them out. ``page`` and
    ``page_size`` apply to each kind separately."""

    text: str
    principal: Principal
    kinds: frozenset[str] = frozenset(KINDS)
    status: tuple[str, ...] = ()  # any of
    priority: tuple[str, ...] = ()  # any of
    agent: str | None = None  # the assigned agent's user id, or NO_AGENT
    tags: tuple[str, ...] = ()  # all of
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    updated_from: datetime | None = None  # inclusive
    updated_to: datetime | None = None  # exclusive
    page: int = 1
    page_size: int = 10

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("The search text is empty.")
        if unknown := set(self.kinds) - set(KINDS):
            raise ValueError(f"Unknown kinds: {', '.join(sorted(unknown))}.")
        if self.page < 1 or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page >= 1 and 1 <= page_size <= {MAX_PAGE_SIZE}.")

    @property
    def has_ticket_filters(self) -> bool:
        return bool(
            self.status
            or self.priority
            or self.agent is not None
            or self.tags
            or self.created_from
            or self.created_to
            or self.updated_from
            or self.updated_to
        )

    @property
    def visible_kinds(self) -> tuple[str, ...]:
        """The kinds this search may return (customers never get customer documents)."""
        kinds = [k for k in KINDS if k in self.kinds]
        if not self.principal.is_staff:
            kinds = [k for k in kinds if k != CUSTOMER]
        if self.has_ticket_filters:
            kinds = [k for k in kinds if k != CUSTOMER]
        return tuple(kinds)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True)
class SearchHit:
    """One result. ``snippet`` is HTML: the matched text, escaped, with ``<mark>`` around
    the matching words. Hits come best first; the score itself is not part of the port."""

    kind: str
    id: str  # the ticket id, message id or customer id
    ticket_id: UUID | None
    customer_id: str
    title: str  # a message's title is its ticket's subject
    snippet: str
    internal: bool = False
    status: str | None = None
    priority: str | None = None
    assigned_agent_id: str | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class SearchGroup:
    # The matches of this kind (not just this page). ``exact`` False: at least ``count``;
    # an adapter may stop counting where it stops ranking (pages end there too), as web
    # search engines and OpenSearch's ``track_total_hits`` do.
    count: int
    hits: tuple[SearchHit, ...] = ()
    exact: bool = True


@dataclass(frozen=True)
class SearchResults:
    groups: dict[str, SearchGroup] = field(default_factory=dict)

    def group(self, kind: str) -> SearchGroup:
        return self.groups.get(kind, SearchGroup(0))


class SearchUnavailableError(ConnectionError):
    """The search backend cannot answer now (down, unreachable, overloaded): the read API
    answers 503; a projector's batch fails before its position moves and is retried (a
    ``ConnectionError``, so the Kafka members' outage handling retries it as it retries a
    lost broker or database)."""


SIMILAR_LIMIT = 10


class SearchIndex(Protocol):
    def search(self, query: SearchQuery) -> SearchResults: ...

    def similar(
        self, ticket_id: UUID, principal: Principal, limit: int = SIMILAR_LIMIT
    ) -> tuple[SearchHit, ...]:
        """Tickets like this one (its subject and description), best first, never itself;
        only what ``principal`` may see. An unknown ticket has none."""
