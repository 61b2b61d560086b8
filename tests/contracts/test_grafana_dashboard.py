"""Every query of the provisioned Grafana dashboard (deploy/grafana/dashboards) runs on the
test ClickHouse server, as the read-only ``analyst`` user, over the hand-computed history,
and gives the numbers docs/analytics.md defines. The ClickHouse plugin's macros are expanded
the way the plugin expands them (``$__timeFilter(c)``: ``c >= toDateTime(from) AND
c <= toDateTime(to)``, seconds)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from clickhouse_driver.errors import ServerException

from infra.clickhouse.native import ClickHouseServerDatabase
from infra.clickhouse.store import ClickHouseProjectionStore
from projections.ports import Envelope
from projections.runner import ProjectionRunner
from tests.contracts.test_analytics_contract import ListSource, calendar
from tests.support import analytics_history as h

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "deskstream-analytics.json"
FROM = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())
TO = int(datetime(2026, 3, 4, tzinfo=UTC).timestamp()) - 1


def expand(sql: str) -> str:
    sql = re.sub(
        r"\$__timeFilter\(([a-z_]+)\)",
        lambda m: f"{m[1]} >= toDateTime({FROM}) AND {m[1]} <= toDateTime({TO})",
        sql,
    )
    return sql.replace("$__fromTime", f"toDateTime({FROM})").replace(
        "$__toTime", f"toDateTime({TO})"
    )


def panels() -> list[dict[str, Any]]:
    return json.loads(DASHBOARD.read_text())["panels"]  # type: ignore[no-any-return]


@contextmanager
def analyst_over(
    clickhouse_url: str, envelopes: list[Envelope]
) -> Iterator[ClickHouseServerDatabase]:
    """A database of ``envelopes``' analytics tables, read as the ``analyst`` user."""
    name = f"grafana_{uuid.uuid4().hex[:12]}"
    owner = ClickHouseServerDatabase(clickhouse_url, database=name)
    store = ClickHouseProjectionStore(owner, calendar=calendar)
    ProjectionRunner(ListSource(envelopes), store).catch_up()
    parts = urlsplit(clickhouse_url)
    analyst_url = urlunsplit(
        (parts.scheme, f"analyst:analyst@{parts.hostname}:{parts.port}", "/" + name, "", "")
    )
    analyst = ClickHouseServerDatabase(analyst_url, create=False)
    try:
        yield analyst
    finally:
        analyst.close()
        owner.drop()
        owner.close()


@pytest.fixture
def as_analyst(clickhouse_url: str) -> Iterator[ClickHouseServerDatabase]:
    """The hand-computed history."""
    with analyst_over(clickhouse_url, h.envelopes()) as analyst:
        yield analyst


@pytest.fixture
def as_analyst_rated(clickhouse_url: str) -> Iterator[ClickHouseServerDatabase]:
    """The hand-computed history with its satisfaction ratings (they change no other
    number the dashboard shows)."""
    with analyst_over(clickhouse_url, h.envelopes_with_ratings()) as analyst:
        yield analyst


def test_the_dashboard_reads_the_clickhouse_datasource():
    datasource = (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    assert "username: analyst" in datasource
    for panel in panels():
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "deskstream-clickhouse"


def test_every_dashboard_query_runs_and_gives_the_defined_numbers(as_analyst_rated):
    results = {
        p["title"]: as_analyst_rated.query(expand(p["targets"][0]["rawSql"])) for p in panels()
    }
    assert all(rows for rows in results.values()), results
    assert results["Open tickets now"] == [(2,)]
    assert results["Open tickets by status"] == [("open", 1), ("waiting_on_customer", 1)]
    assert results["Created and resolved per day (UTC)"] == [
        ("2026-03-02 00:00:00", 3, 1),
        ("2026-03-03 00:00:00", 1, 2),
    ]
    assert results["Resolution time (hours)"] == [(14.0, 22.0)]
    assert results["First-response time (hours)"] == [(1.0, 1.8)]
    assert results["SLA breaches per day (UTC)"] == [
        ("2026-03-02 00:00:00", 0, 1),
        ("2026-03-03 00:00:00", 1, 0),
    ]
    assert results["Backlog by agent"] == [("(unassigned)", 1), (h.A1, 1)]
    assert results["Tickets opened by tag (top 20)"] == [("billing", 2), ("login", 2)]
    assert results["Reopen rate (%)"] == [(33.33,)]
    # CSAT as Metrics.satisfaction defines it: each ticket's latest rating given in the range.
    csat = h.EXPECTED_SATISFACTION
    assert results["Satisfaction (CSAT)"] == [
        (csat["ratings"], csat["average"], csat["satisfied_pct"])
    ]
    assert results["Satisfaction ratings (1-5)"] == [
        (str(r["rating"]), r["tickets"]) for r in csat["distribution"] if r["tickets"]
    ]
    assert results["Satisfaction by agent"] == [
        (a["agent_id"], a["ratings"], a["average"], a["satisfied_pct"]) for a in csat["by_agent"]
    ]


def test_the_analyst_cannot_write(as_analyst):
    with pytest.raises(ServerException, match="readonly"):
        as_analyst.command("DROP TABLE analytics_events")
    with pytest.raises(ServerException, match="readonly"):
        as_analyst.insert("analytics_position", ["name", "position"], [("x", 1)])
