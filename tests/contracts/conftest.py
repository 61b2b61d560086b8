"""Adapters of the search contract beyond PostgreSQL's (``test_search_contract.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from projections.ports import Envelope
from projections.search import SearchQuery, SearchResults


@pytest.fixture
def opensearch_search_adapter(db: Any) -> Iterator[Any]:
    """The OpenSearch adapter on the server of ``DESKSTREAM_OPENSEARCH_URL`` (osmem-server,
    started by ``scripts/with_services.py``), an index of its own per test; batches refresh
    at once so that what was fed is searchable."""
    url = os.environ.get("DESKSTREAM_OPENSEARCH_URL")
    if not url:
        pytest.skip("no OpenSearch server (run through scripts/with_services.py)")
    from config.bootstrap import customer_info
    from infra.opensearch import client as os_client
    from infra.opensearch import search as os_search

    client = os_client.client(url)
    alias = f"contract-{uuid.uuid4().hex[:12]}"
    store = os_search.OpenSearchSearchStore(client, alias, customer_info, refresh="true")

    class Adapter:
        index = os_search.OpenSearchSearchIndex(client, alias)

        def feed(self, envelopes: Sequence[Envelope]) -> None:
            with store.batch() as batch:
                batch.apply(envelopes)
                assert batch.applied == len(envelopes)

        def search(self, query: SearchQuery) -> SearchResults:
            return self.index.search(query)

    yield Adapter()
    store.drop()
