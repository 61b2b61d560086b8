"""``present_hit`` builds what ``SearchHitSerializer`` documents, without DRF's per-field cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from projections.search import SearchHit
from read_api.search import SearchHitSerializer, present_hit


@pytest.mark.parametrize(
    "hit",
    [
        SearchHit(
            kind="message",
            id=str(uuid4()),
            ticket_id=uuid4(),
            customer_id="12",
            title="Printer jam",
            snippet="the <mark>printer</mark>",
            internal=True,
            status="open",
            priority="high",
            assigned_agent_id="4",
            tags=("hardware", "billing"),
            created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        SearchHit(
            kind="customer",
            id="12",
            ticket_id=None,
            customer_id="12",
            title="Maria",
            snippet="<mark>Maria</mark>",
            internal=False,
            status=None,
            priority=None,
            assigned_agent_id=None,
            tags=(),
            created_at=None,
            updated_at=None,
            occurred_at=None,
        ),
    ],
)
def test_present_hit_is_what_the_serializer_documents(hit: SearchHit) -> None:
    assert present_hit(hit) == SearchHitSerializer(hit).data
