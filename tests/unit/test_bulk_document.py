"""The JSON document of ``infra.postgres.bulk`` (the rows of a projector's multi-row
statements): orjson writes it, and it says what ``json.dumps`` with ISO dates said."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from infra.postgres.bulk import _document


def _stdlib(columns: list[str], rows: list[list[Any]]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, Jsonb):
            return value.obj
        if isinstance(value, set | frozenset | tuple):
            return sorted(value) if isinstance(value, set | frozenset) else list(value)
        raise TypeError(type(value).__name__)

    records = [dict(zip(columns, row, strict=True)) for row in rows]
    return json.dumps(records, default=plain, ensure_ascii=False)


def test_the_document_says_what_the_stdlib_said() -> None:
    columns = ["id", "at", "naive", "day", "text", "tags", "n", "none", "payload", "flag", "pair"]
    rows = [
        [uuid4(), datetime(2026, 11, 27, 8, 0, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 6),
         date(2026, 2, 28), "Grüße \"quoted\" \\ <b> \n ✓", ["a", "b"], 2**40, None,
         Jsonb({"k": [1, "x"], "u": "é"}), True, (1, 2)],
        [UUID(int=0), datetime(2026, 3, 1, 12, 30, 15, 123456,
                               tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
         datetime(2026, 1, 1), date(1999, 12, 31), "", [], -1, None, Jsonb([]), False, ()],
    ]  # fmt: skip
    assert json.loads(_document(columns, rows)) == json.loads(_stdlib(columns, rows))
    mappings = [dict(zip(columns, row, strict=True)) for row in rows]
    assert _document(columns, mappings) == _document(columns, rows)
    # Timestamps are ISO 8601 exactly as ``isoformat`` writes them (PostgreSQL reads both).
    assert '"at":"2026-11-27T08:00:00+00:00"' in _document(columns, rows)
    assert '"2026-03-01T12:30:15.123456-05:30"' in _document(columns, rows)
