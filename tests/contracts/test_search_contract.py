"""The search port's contract, run against every adapter (PostgreSQL and OpenSearch).

A fixed corpus is written the way production writes it: real ``Ticket`` aggregates emit
events, the events go through the search projector into the adapter, then the suite asks
``SearchIndex.search`` and checks exact outcomes: relevance order, every filter, who may see
what, highlighting, edits, pagination.

To add an adapter: write a fixture named ``<name>_search_adapter`` that returns an object
with ``feed(envelopes)`` (apply events in one batch, exactly once) and ``search(query)``,
starting from an empty index, and add ``<name>`` to ``ADAPTERS``. Only tests every adapter
must pass belong here; an adapter's own tuning is tested beside it (PostgreSQL's in
``tests/integration/test_search_postgres.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.lifecycle import Role
from domain.ticket import Ticket
from projections import search
from projections.search import Principal, SearchQuery
from tests.support.search import (
    BASE,
    CorpusLog,
    SearchAdapter,
    find,
    ids,
    open_ticket,
    postgres_search_adapter_on_empty_index,
    staff_says,
    tid,
)

ADAPTERS = ["postgres", "opensearch"]


@pytest.fixture
def postgres_search_adapter(db: Any) -> SearchAdapter:
    return postgres_search_adapter_on_empty_index()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> SearchAdapter:
    return request.getfixturevalue(f"{request.param}_search_adapter")  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- corpus
@dataclasses.dataclass
class Corpus:
    log: CorpusLog
    alice: Any
    bob: Any
    agent: Any
    jams: Ticket  # "printer" in its subject; alice's; high, assigned, tags hardware+billing
    login: Ticket  # "printer" in its description only; alice's; low, open, tag accounts
    refund: Ticket  # "printer" only in bob's company name; bob's; medium, open
    markup: Ticket  # HTML in its description; carol's
    agent_msg: UUID  # public agent reply on ``login`` mentioning the printer
    zebra_note: UUID  # internal note on ``jams``
    bob_note: UUID  # internal note on ``refund`` mentioning the printer

    def staff(self) -> Principal:
        return Principal(Role.AGENT, str(self.agent.pk))

    def as_customer(self, user: Any) -> Principal:
        return Principal(Role.CUSTOMER, str(user.pk))


@pytest.fixture
def corpus(adapter: SearchAdapter, make_user: Callable[..., Any]) -> Corpus:
    alice = make_user("customer", email="alice@globex.example", company="Globex Corporation")
    alice.first_name, alice.last_name = "Alice", "Archer"
    alice.save()
    bob = make_user("customer", email="bob@depot.example", company="Printer Depot")
    bob.first_name, bob.last_name = "Bob", "Baker"
    bob.save()
    carol = make_user("customer", email="carol@initech.example", company="Initech")
    agent = make_user("agent")
    staff = {"actor_id": str(agent.pk), "actor_role": Role.AGENT}
    log = CorpusLog()

    jams = open_ticket(
        alice,
        subject="Printer jams on every invoice",
        description="Pages crumple halfway through the widget tray.",
        priority="high",
        tags=["hardware", "billing"],
    )
    log.append(jams, at=BASE)
    jams.assign(agent_id=str(agent.pk), **staff)
    log.append(jams, at=BASE + timedelta(hours=1))
    staff_says(jams, agent, "Please send a photo of the display.")
    zebra_note = staff_says(jams, agent, "Warranty expired; zebra procedure.", internal=True)
    log.append(jams, at=BASE + timedelta(hours=2))
    jams.post_message(
        author_id=str(alice.pk), author_role=Role.CUSTOMER, body="The display shows code 42."
    )
    log.append(jams, at=BASE + timedelta(days=1))

    login = open_ticket(
        alice,
        subject="Cannot log in",
        description="The reset mail never arrives; the printer in reception is a widget too.",
        priority="low",
        tags=["accounts"],
    )
    log.append(login, at=BASE + timedelta(days=10))
    agent_msg = staff_says(login, agent, "Which printer model do you use?")
    log.append(login, at=BASE + timedelta(days=11))

    refund = open_ticket(
        bob, subject="Refund request", description="Charged twice for the widget plan."
    )
    log.append(refund, at=BASE + timedelta(days=20))
    bob_note = staff_says(refund, agent, "The printer reseller pays by card.", internal=True)
    log.append(refund, at=BASE + timedelta(days=21))

    markup = open_ticket(
        carol,
        subject="Markup in description",
        description="<b>bold</b> gizmo & co <script>alert(1)</script>",
    )
    log.append(markup, at=BASE + timedelta(days=30))
    log.feed(adapter)
    return Corpus(
        log, alice, bob, agent, jams, login, refund, markup, agent_msg, zebra_note, bob_note
    )


# -------------------------------------------------------------------------------- tests
def test_the_projector_knows_the_ticket_topics() -> None:
    assert (
        search.TICKET_OPENED,
        search.MESSAGE_POSTED,
        search.STATUS_CHANGED,
        search.AGENT_ASSIGNED,
        search.AGENT_UNASSIGNED,
        search.PRIORITY_CHANGED,
        search.TICKET_EDITED,
    ) == (
        Ticket.TicketOpened.TOPIC,
        Ticket.MessagePosted.TOPIC,
        Ticket.StatusChanged.TOPIC,
        Ticket.AgentAssigned.TOPIC,
        Ticket.AgentUnassigned.TOPIC,
        Ticket.PriorityChanged.TOPIC,
        Ticket.TicketEdited.TOPIC,
    )
    assert Ticket.Event.TOPIC.startswith(search.TICKET_TOPICS)


def test_relevance_subject_then_body_then_customer_metadata(adapter, corpus):
    results = find(adapter, "printer", corpus.staff())
    assert ids(results, "ticket") == [tid(corpus.jams), tid(corpus.login), tid(corpus.refund)]
    assert results.group("ticket").count == 3
    assert set(ids(results, "message")) == {str(corpus.agent_msg), str(corpus.bob_note)}
    assert ids(results, "customer") == [str(corpus.bob.pk)]
    customer = results.group("customer").hits[0]
    assert customer.title == "Bob Baker"
    assert customer.ticket_id is None
    assert "<mark>Printer</mark> Depot" in customer.snippet


def test_a_customer_name_ranks_above_their_other_metadata(adapter, corpus, make_user):
    archer = make_user("customer", email="archer@example.test", company="Archer Supplies")
    other = open_ticket(archer, subject="Hello", description="Hi")
    corpus.log.append(other, at=BASE + timedelta(days=40))
    corpus.log.feed(adapter)
    results = find(adapter, "archer", corpus.staff(), kinds=frozenset({"customer"}))
    # Alice Archer by name (weight A), then the Archer Supplies customer by company (C).
    assert ids(results, "customer") == [str(corpus.alice.pk), str(archer.pk)]


def test_hits_carry_the_ticket_fields(adapter, corpus):
    results = find(adapter, "invoice", corpus.staff())
    (hit,) = results.group("ticket").hits
    assert hit.kind == "ticket"
    assert hit.id == tid(corpus.jams)
    assert hit.ticket_id == corpus.jams.id
    assert hit.customer_id == str(corpus.alice.pk)
    assert hit.title == "Printer jams on every invoice"
    assert (hit.status, hit.priority, hit.assigned_agent_id) == (
        "assigned",
        "high",
        str(corpus.agent.pk),
    )
    assert hit.tags == ("hardware", "billing")
    assert hit.created_at == BASE
    assert hit.occurred_at == BASE
    assert hit.updated_at == BASE + timedelta(days=1)  # the customer's reply
    assert hit.internal is False


def test_message_hits_are_titled_by_their_ticket(adapter, corpus):
    results = find(adapter, "zebra", corpus.staff())
    (hit,) = results.group("message").hits
    assert hit.id == str(corpus.zebra_note)
    assert hit.ticket_id == corpus.jams.id
    assert hit.title == "Printer jams on every invoice"
    assert hit.internal is True
    assert hit.occurred_at == BASE + timedelta(hours=2, seconds=1)
    assert hit.status == "assigned"
    assert results.group("ticket").count == 0


def test_customers_search_only_their_own_tickets_and_never_internal_notes(adapter, corpus):
    alice = corpus.as_customer(corpus.alice)
    results = find(adapter, "printer", alice)
    assert ids(results, "ticket") == [tid(corpus.jams), tid(corpus.login)]
    assert ids(results, "message") == [str(corpus.agent_msg)]
    assert results.group("customer").count == 0
    assert results.group("message").count == 1

    for word in ["zebra", "warranty"]:  # only in an internal note of her own ticket
        nothing = find(adapter, word, alice)
        assert [nothing.group(k).count for k in search.KINDS] == [0, 0, 0]
    theirs = find(adapter, "invoice", corpus.as_customer(corpus.bob))
    assert [theirs.group(k).count for k in search.KINDS] == [0, 0, 0]


def test_customers_never_get_customer_documents(adapter, corpus):
    alice = corpus.as_customer(corpus.alice)
    own_company = find(adapter, "globex", alice)
    assert ids(own_company, "ticket") == [tid(corpus.login), tid(corpus.jams)]  # metadata only
    assert own_company.group("customer").count == 0
    only_customers = find(adapter, "globex", alice, kinds=frozenset({"customer"}))
    assert [only_customers.group(k).count for k in search.KINDS] == [0, 0, 0]
    staff = find(adapter, "globex", corpus.staff(), kinds=frozenset({"customer"}))
    assert ids(staff, "customer") == [str(corpus.alice.pk)]
    assert staff.group("ticket").count == 0


def test_admins_search_everything_like_agents(adapter, corpus, make_user):
    admin = make_user("admin")
    results = find(adapter, "printer", Principal(Role.ADMIN, str(admin.pk)))
    assert results.group("ticket").count == 3
    assert results.group("message").count == 2
    assert results.group("customer").count == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": ("assigned",)}, {"jams"}),
        ({"status": ("open", "resolved")}, {"login", "refund"}),
        ({"priority": ("high",)}, {"jams"}),
        ({"priority": ("low", "medium")}, {"login", "refund"}),
        ({"agent": "AGENT"}, {"jams"}),
        ({"agent": search.NO_AGENT}, {"login", "refund"}),
        ({"agent": "nobody"}, set()),
        ({"tags": ("hardware",)}, {"jams"}),
        ({"tags": ("hardware", "billing")}, {"jams"}),
        ({"tags": ("hardware", "accounts")}, set()),
        ({"created_from": BASE + timedelta(days=10)}, {"login", "refund"}),
        ({"created_to": BASE + timedelta(days=10)}, {"jams"}),
        (
            {"created_from": BASE + timedelta(days=10), "created_to": BASE + timedelta(days=20)},
            {"login"},
        ),
        ({"created_from": BASE}, {"jams", "login", "refund"}),  # from is inclusive
        ({"updated_from": BASE + timedelta(days=11)}, {"login", "refund"}),
        ({"updated_to": BASE + timedelta(days=1)}, set()),  # to is exclusive
        ({"updated_to": BASE + timedelta(days=1, seconds=1)}, {"jams"}),
        ({"status": ("open",), "priority": ("low",)}, {"login"}),
    ],
)
def test_ticket_filters(adapter, corpus, filters, expected):
    if filters.get("agent") == "AGENT":
        filters = {**filters, "agent": str(corpus.agent.pk)}
    names = {tid(getattr(corpus, name)): name for name in ["jams", "login", "refund", "markup"]}
    results = find(adapter, "widget", corpus.staff(), **filters)
    assert {names[i] for i in ids(results, "ticket")} == expected
    assert results.group("ticket").count == len(expected)
    assert results.group("customer").count == 0


def test_filters_apply_to_messages_and_leave_out_customers(adapter, corpus):
    staff = corpus.staff()
    assert find(adapter, "printer", staff, status=("open",)).group("message").count == 2
    assert find(adapter, "printer", staff, status=("assigned",)).group("message").count == 0
    assert find(adapter, "display", staff, tags=("billing",)).group("message").count == 2
    assert find(adapter, "display", staff, agent=search.NO_AGENT).group("message").count == 0
    by_priority = find(adapter, "printer", staff, priority=("medium",))
    assert ids(by_priority, "ticket") == [tid(corpus.refund)]
    assert ids(by_priority, "message") == [str(corpus.bob_note)]
    assert by_priority.group("customer").count == 0  # customers carry no ticket fields


def test_kinds(adapter, corpus):
    only_messages = find(adapter, "printer", corpus.staff(), kinds=frozenset({"message"}))
    assert [only_messages.group(k).count for k in search.KINDS] == [0, 2, 0]
    tickets_and_customers = find(
        adapter, "printer", corpus.staff(), kinds=frozenset({"ticket", "customer"})
    )
    assert [tickets_and_customers.group(k).count for k in search.KINDS] == [3, 0, 1]


def test_snippets_highlight_the_matched_words(adapter, corpus):
    results = find(adapter, "invoices", corpus.staff())  # stemmed: finds "invoice"
    (hit,) = results.group("ticket").hits
    assert "<mark>invoice</mark>" in hit.snippet
    assert "jams" in hit.snippet
    message = find(adapter, "display code", corpus.staff()).group("message").hits
    assert [m.snippet for m in message] == ["The <mark>display</mark> shows <mark>code</mark> 42."]


def test_a_long_text_gives_a_short_snippet_around_the_match(adapter, corpus):
    filler = "Nothing to see in this sentence at all. " * 60
    ticket = open_ticket(
        corpus.alice, subject="Long story", description=f"{filler}The needle is here. {filler}"
    )
    corpus.log.append(ticket, at=BASE + timedelta(days=90))
    corpus.log.feed(adapter)
    (hit,) = find(adapter, "needle", corpus.staff()).group("ticket").hits
    assert "<mark>needle</mark>" in hit.snippet
    assert len(hit.snippet) < 400


def test_snippets_are_escaped_html_with_only_the_marks(adapter, corpus):
    (hit,) = find(adapter, "gizmo", corpus.staff()).group("ticket").hits
    assert "<mark>gizmo</mark>" in hit.snippet
    assert "&lt;b&gt;bold&lt;/b&gt;" in hit.snippet
    assert "&amp; co" in hit.snippet
    assert "<b>" not in hit.snippet
    assert "<script>" not in hit.snippet
    assert hit.snippet.count("<") == hit.snippet.count("<mark>") + hit.snippet.count("</mark>")
    assert hit.title == "Markup in description"


def test_an_edited_ticket_is_found_by_its_new_words_not_its_old_ones(adapter, corpus):
    ticket = open_ticket(
        corpus.alice, subject="Quantum flux capacitor", description="Flux readings drift."
    )
    corpus.log.append(ticket, at=BASE + timedelta(days=50))
    staff_says(ticket, corpus.agent, "Coolant pressure nominal.")
    corpus.log.append(ticket, at=BASE + timedelta(days=51))
    corpus.log.feed(adapter)  # stored; the edit below comes in a later batch
    assert ids(find(adapter, "quantum", corpus.staff()), "ticket") == [tid(ticket)]

    ticket.edit(
        actor_id=str(corpus.agent.pk),
        actor_role=Role.AGENT,
        subject="Warp drive calibration",
        description="Coil readings drift.",
        tags=["engine"],
    )
    corpus.log.append(ticket, at=BASE + timedelta(days=52))
    corpus.log.feed(adapter)

    staff = corpus.staff()
    for old in ["quantum", "capacitor", "flux"]:
        assert find(adapter, old, staff).group("ticket").count == 0, old
    for new in ["warp", "calibration", "coil"]:
        assert ids(find(adapter, new, staff), "ticket") == [tid(ticket)], new
    (hit,) = find(adapter, "warp", staff, tags=("engine",)).group("ticket").hits
    assert "<mark>Warp</mark>" in hit.snippet
    assert hit.title == "Warp drive calibration"
    assert hit.updated_at == BASE + timedelta(days=52)
    (message,) = find(adapter, "coolant", staff, tags=("engine",)).group("message").hits
    assert message.title == "Warp drive calibration"
    assert message.updated_at == BASE + timedelta(days=52)
    assert ids(find(adapter, "warp", corpus.as_customer(corpus.alice)), "ticket") == [tid(ticket)]


def test_field_changes_reach_messages_stored_in_earlier_batches(adapter, corpus):
    staff = {"actor_id": str(corpus.agent.pk), "actor_role": Role.AGENT}
    corpus.jams.change_status(target="in_progress", **staff)
    corpus.jams.change_priority(priority="urgent", **staff)
    corpus.jams.unassign(**staff)  # back to open, unassigned
    corpus.log.append(corpus.jams, at=BASE + timedelta(days=60))
    corpus.log.feed(adapter)
    principal = corpus.staff()
    assert find(adapter, "display", principal, status=("assigned",)).group("message").count == 0
    moved = find(adapter, "display", principal, status=("open",), priority=("urgent",))
    assert moved.group("message").count == 2
    assert find(adapter, "display", principal, agent=search.NO_AGENT).group("message").count == 2
    assert {h.assigned_agent_id for h in moved.group("message").hits} == {None}
    (ticket,) = find(adapter, "invoice", principal, priority=("urgent",)).group("ticket").hits
    assert (ticket.status, ticket.assigned_agent_id) == ("open", None)


def test_pagination_per_kind_best_first_then_most_recently_updated(adapter, corpus):
    made = []
    for i in range(5):
        ticket = open_ticket(corpus.bob, subject=f"Paging sample {i}", description="lorem")
        corpus.log.append(ticket, at=BASE + timedelta(days=70 + i))
        made.append(tid(ticket))
    corpus.log.feed(adapter)
    newest_first = made[::-1]
    pages = [
        find(adapter, "lorem", corpus.staff(), page=page, page_size=2) for page in [1, 2, 3, 4]
    ]
    assert [ids(p, "ticket") for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
        [],
    ]
    assert {p.group("ticket").count for p in pages} == {5}


def test_a_ticket_of_an_unknown_customer_is_still_searchable(adapter, corpus):
    ticket = Ticket.open(
        customer_id="imported-17",
        subject="Legacy import",
        description="From the old helpdesk.",
        actor_id="system",
        actor_role=Role.SYSTEM,
    )
    corpus.log.append(ticket, at=BASE + timedelta(days=80))
    corpus.log.feed(adapter)
    results = find(adapter, "legacy", corpus.staff())
    assert ids(results, "ticket") == [tid(ticket)]
    assert results.group("customer").count == 0


def test_queries_without_words_find_nothing(adapter, corpus):
    for text in ["the", '""', "!!", "   a   "]:
        results = find(adapter, text, corpus.staff())
        assert [results.group(k).count for k in search.KINDS] == [0, 0, 0], text


def test_websearch_syntax(adapter, corpus):
    staff = corpus.staff()
    assert ids(find(adapter, '"printer jams"', staff), "ticket") == [tid(corpus.jams)]
    assert ids(find(adapter, "printer -invoice", staff), "ticket") == [
        tid(corpus.login),
        tid(corpus.refund),
    ]
    assert set(ids(find(adapter, "gizmo or refund", staff), "ticket")) == {
        tid(corpus.markup),
        tid(corpus.refund),
    }


def test_the_query_is_validated() -> None:
    principal = Principal(Role.AGENT, "1")
    with pytest.raises(ValueError, match="empty"):
        SearchQuery(text="  ", principal=principal)
    with pytest.raises(ValueError, match="Unknown kinds"):
        SearchQuery(text="x", principal=principal, kinds=frozenset({"agent"}))
    with pytest.raises(ValueError, match="page"):
        SearchQuery(text="x", principal=principal, page=0)
    with pytest.raises(ValueError, match="page"):
        SearchQuery(text="x", principal=principal, page_size=search.MAX_PAGE_SIZE + 1)


@pytest.mark.parametrize("batches", [1, 2])
def test_a_customers_document_is_the_same_whatever_order_their_tickets_arrive(
    adapter, make_user, batches
):
    """Issue 24: on Kafka a ticket's events come in order but two tickets in different
    partitions do not, so the search projector may meet a customer's latest ticket before
    their first (a live build and a rebuild then gave the customer different times). Here
    the log holds the latest ticket first; the document keeps the first ticket's
    ``created_at`` and ``occurred_at`` and the latest's ``updated_at`` either way, in one
    batch and across two (where the stored document is merged)."""
    dana = make_user("customer", email="dana@umbrella.example", company="Umbrella Holdings")
    log = CorpusLog()
    latest = BASE + timedelta(days=5)
    log.append(open_ticket(dana, subject="Second", description="Again."), at=latest)
    log.append(open_ticket(dana, subject="First", description="Hello."), at=BASE)
    envelopes = log.read(0, log.head())
    if batches == 1:
        adapter.feed(envelopes)
    else:
        adapter.feed(envelopes[:1])
        adapter.feed(envelopes[1:])
    staff = Principal(Role.AGENT, "1")
    results = find(adapter, "umbrella", staff, kinds=frozenset({"customer"}))
    (hit,) = results.group("customer").hits
    assert hit.id == str(dana.pk)
    assert (hit.created_at, hit.occurred_at, hit.updated_at) == (BASE, BASE, latest)
