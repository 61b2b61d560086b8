"""The ten example queries of docs/analytics.md run as written, on the test ClickHouse server
(18.16) as the read-only analyst user, over the hand-computed history, and answer rows."""

from __future__ import annotations

import re
from pathlib import Path

from tests.contracts.test_grafana_dashboard import as_analyst

__all__ = ["as_analyst"]  # the fixture

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "analytics.md"


def example_queries() -> list[str]:
    section = DOC.read_text().split("## Example queries", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def test_the_doc_has_ten_example_queries():
    assert len(example_queries()) == 10


def test_every_example_query_runs_and_answers(as_analyst):
    for number, sql in enumerate(example_queries(), start=1):
        rows = as_analyst.query(sql)
        assert rows, f"example {number} answered no rows"
    by_status = dict(as_analyst.query(example_queries()[0]))
    assert by_status == {"open": 1, "waiting_on_customer": 1}
    history = as_analyst.query(example_queries()[9])
    assert [row[0] for row in history] == list(range(1, 10))


def test_every_example_query_runs_on_chdb_too(settings):
    import uuid

    from infra.clickhouse.embedded import ChdbDatabase
    from tests.contracts.test_analytics_contract import built

    db = ChdbDatabase(settings.ANALYTICS_PATH, database=f"docs_{uuid.uuid4().hex[:12]}")
    try:
        built(db)
        for number, sql in enumerate(example_queries(), start=1):
            assert db.query(sql), f"example {number} answered no rows on chDB"
    finally:
        db.drop()
        db.close()
