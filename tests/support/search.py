"""What the search tests share: the adapter shape they drive, the PostgreSQL adapter, the log
the corpus is written to, and small helpers to write tickets and read results.

``tests/contracts/test_search_contract.py`` runs on every adapter; the PostgreSQL adapter's
own tuning (ranking caps, recency windows) is tested in
``tests/integration/test_search_postgres.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from domain.lifecycle import Role
from domain.ticket import Ticket
from projections.ports import Envelope
from projections.search import Principal, SearchQuery, SearchResults
from tests.support.fake_log import FakeEventLog

BASE = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


class SearchAdapter(Protocol):
    def feed(self, envelopes: Sequence[Envelope]) -> None: ...

    def search(self, query: SearchQuery) -> SearchResults: ...


def postgres_search_adapter_on_empty_index() -> SearchAdapter:
    """The PostgreSQL adapter on an empty index (call it inside a test with ``db``)."""
    from django.db import connection

    from infra.postgres import search as pg
    from infra.postgres.projection_store import PostgresProjectionStore

    with connection.cursor() as cur:  # inside the test's transaction: rolled back after it
        cur.execute("DELETE FROM rm_search_doc")
    store = PostgresProjectionStore(
        "search_contract",
        tables=pg.TABLES,
        state_factory=pg.PostgresSearchState,
        handler=pg.handler,
    )

    class Adapter:
        index = pg.PostgresSearchIndex()

        def feed(self, envelopes: Sequence[Envelope]) -> None:
            with store.batch() as batch:
                batch.apply(envelopes)
                assert batch.applied == len(envelopes)

        def search(self, query: SearchQuery) -> SearchResults:
            return self.index.search(query)

    return Adapter()


class CorpusLog(FakeEventLog):
    """The log a corpus is written to (``append(ticket, at=...)``: the times the story says);
    ``feed`` hands an adapter, in one batch, what it has not had yet."""

    def __init__(self) -> None:
        super().__init__()
        self.fed = 0

    def feed(self, adapter: SearchAdapter) -> None:
        adapter.feed(self.read(self.fed, self.head() - self.fed))
        self.fed = self.head()


def open_ticket(customer: Any, **fields: Any) -> Ticket:
    return Ticket.open(
        customer_id=str(customer.pk),
        actor_id=str(customer.pk),
        actor_role=Role.CUSTOMER,
        **fields,
    )


def staff_says(ticket: Ticket, agent: Any, body: str, *, internal: bool = False) -> UUID:
    ticket.post_message(
        author_id=str(agent.pk), author_role=Role.AGENT, body=body, internal=internal
    )
    return ticket.messages[-1].id


def find(adapter: SearchAdapter, text: str, principal: Principal, **filters: Any) -> SearchResults:
    return adapter.search(SearchQuery(text=text, principal=principal, **filters))


def ids(results: SearchResults, kind: str) -> list[str]:
    return [hit.id for hit in results.group(kind).hits]


def tid(ticket: Ticket) -> str:
    return str(ticket.id)
