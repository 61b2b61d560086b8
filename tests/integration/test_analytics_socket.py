"""chDB's reads through the owner's socket (ADR 0035): the web server's side of ``make run``.

The owner here is the test process (it owns its chDB directory); the socket is served by the
same thread ``manage.py projector run-all`` starts, and read by the adapter the web server
uses, so a dashboard answers the same through it as from chDB itself."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from infra.clickhouse import connect
from infra.clickhouse.embedded import ChdbDatabase
from infra.clickhouse.local import ChdbSocketDatabase, serve_thread
from infra.clickhouse.metrics import Metrics
from infra.clickhouse.ports import AnalyticsUnavailableError
from infra.clickhouse.store import ClickHouseProjectionStore
from tests.support.analytics_history import envelopes as history


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[ChdbDatabase, Path]]:
    """A database of this process's chDB with a history in it, and the socket serving it."""
    name = f"socket_{uuid.uuid4().hex[:8]}"
    db = ChdbDatabase(settings.ANALYTICS_PATH, database=name)
    socket_path = tmp_path / "analytics.sock"
    stop = threading.Event()
    thread = serve_thread(stop, socket_path, Path(settings.ANALYTICS_PATH), database=name)
    thread.start()
    try:
        yield db, socket_path
    finally:
        stop.set()
        thread.join(10)
        db.drop()
        db.close()


def wait_for_socket(path: Path) -> None:
    deadline = datetime.now(UTC).timestamp() + 10
    while not path.exists():
        assert datetime.now(UTC).timestamp() < deadline, "the socket never appeared"
        threading.Event().wait(0.05)


def test_the_dashboard_reads_the_same_through_the_socket(
    owner: tuple[ChdbDatabase, Path],
) -> None:
    db, socket_path = owner
    store = ClickHouseProjectionStore(db)
    envelopes = history()
    with store.batch() as batch:
        batch.apply(envelopes)
    wait_for_socket(socket_path)
    direct, through = Metrics(db), Metrics(ChdbSocketDatabase(socket_path))
    assert through.position() == direct.position() == envelopes[-1].position
    rows = "SELECT ticket_id, version, tags FROM analytics_tickets FINAL ORDER BY ticket_id"
    assert through.db.query(rows) == direct.db.query(rows)
    assert len(direct.db.query(rows)) > 1
    count = "SELECT count() FROM analytics_events"
    assert through.db.query_all([rows, count]) == [direct.db.query(rows), direct.db.query(count)]


def test_the_socket_serves_reads_only(owner: tuple[ChdbDatabase, Path]) -> None:
    db, socket_path = owner
    ClickHouseProjectionStore(db)  # the tables
    wait_for_socket(socket_path)
    reader = ChdbSocketDatabase(socket_path)
    for statement in (
        "INSERT INTO analytics_position (name, position, written_at) VALUES ('x', 9, now())",
        "DROP TABLE analytics_position",
    ):
        with pytest.raises(RuntimeError, match="only SELECT"):
            reader.query(statement)
    with pytest.raises(RuntimeError, match="readonly"):  # the serving connection itself
        reader.query("SELECT 1; DROP TABLE analytics_position")
    with pytest.raises(RuntimeError, match="Unknown"):  # the engine's own message comes back
        reader.query("SELECT no_such_column FROM analytics_position")
    with pytest.raises(PermissionError):
        reader.insert("analytics_position", ["name"], [["x"]])
    assert db.query("SELECT count() FROM analytics_position WHERE name = 'x'") == [(0,)]


def test_no_owner_is_analytics_unavailable(tmp_path: Path) -> None:
    """The web server's reads before the projector process serves (or after it stopped):
    the dashboard's 503, not a 500."""
    connect.read_through(tmp_path / "nobody.sock")
    try:
        with pytest.raises(AnalyticsUnavailableError, match="does not answer"):
            connect.reader("", settings.ANALYTICS_PATH).position()
    finally:
        connect.read_through(None)


def test_a_dashboard_before_the_projectors_first_batch_reads_zero(
    owner: tuple[ChdbDatabase, Path],
) -> None:
    """The owner creates the tables before it serves: the web server may ask first."""
    _, socket_path = owner
    wait_for_socket(socket_path)
    assert Metrics(ChdbSocketDatabase(socket_path)).position() == 0
