"""The demo data of ``make run``: a history spread over the past 30 days, with real delays
between a ticket's steps, that every projector builds live exactly as it rebuilds it
(PostgreSQL's read models, search, notifications, assignment, SLA, and analytics on chDB)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from command_api.application import get_application
from command_api.management.commands.seed_demo import (
    AGENTS,
    CUSTOMERS,
    DAYS,
    DEMO_CAPACITY,
    OPENING_LINES,
    seed_tickets,
)
from config.bootstrap import STORES, event_source, store
from domain.sla import BusinessCalendar
from infra.auth.models import User
from infra.automation import defaults
from infra.clickhouse.metrics import Filters, Metrics
from infra.clickhouse.store import ClickHouseProjectionStore
from infra.postgres.models import AgentRecord, AgentWorkloadRecord
from projections.runner import ProjectionRunner, rebuild
from tests.contracts.test_analytics_contract import snapshot as analytics_snapshot
from tests.integration.test_projections import snapshot

TICKETS = 40
TICKET_TOPICS = "deskstream.ticket:"


@pytest.fixture
def chdb(settings: Any) -> Iterator[Any]:
    from infra.clickhouse.embedded import ChdbDatabase

    db = ChdbDatabase(settings.ANALYTICS_PATH, database=f"demo_{uuid.uuid4().hex[:12]}")
    try:
        yield db
    finally:
        db.drop()
        db.close()


class SeedOnly:
    """The log after ``start``: the events of this test's seed, not those earlier tests of
    the session appended (the event store is never rolled back), for the analytics counts."""

    def __init__(self, source: Any, start: int) -> None:
        self.source, self.start = source, start

    def head(self) -> int:
        return int(self.source.head())

    def read(self, after: int, limit: int) -> Any:
        return self.source.read(max(after, self.start), limit)

    def wait(self, after: int, timeout: float) -> None:
        self.source.wait(max(after, self.start), timeout)


def analytics_store(db: Any) -> ClickHouseProjectionStore:
    return ClickHouseProjectionStore(
        db, calendar=lambda: BusinessCalendar.from_json(defaults.CALENDAR)
    )


@pytest.mark.django_db
def test_the_demo_history_spans_30_days_and_every_projector_rebuilds_its_live_state(chdb):
    start = event_source().head()
    call_command("seed_demo", tickets=0)  # the users and agents
    # The demo's own people (earlier tests of the session may have committed others).
    customers = list(User.objects.filter(email__in=[c[0] for c in CUSTOMERS]).order_by("email"))
    agents = list(User.objects.filter(email__in=[a[0] for a in AGENTS]).order_by("email"))
    assert len(customers) == 6
    assert len(agents) == 3
    # Earlier test files' servers committed read models built while their users existed;
    # a transactional test's flush has removed some of those users since. Rebuilt first, the
    # tables hold what the log gives today, and what follows is the seed's alone.
    for name in sorted(STORES):
        rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in)
    # The assignment process issues commands from its live batches: as under make run, it
    # starts once the seed is written (it would assign the seed's tickets at today's time).
    live = {
        name: ProjectionRunner(event_source(), store(name), batch_size=7)
        for name in sorted(STORES)
        if name != "assignment"
    }
    seed_only = SeedOnly(event_source(), start)
    live["analytics"] = ProjectionRunner(seed_only, analytics_store(chdb), batch_size=7)
    for runner in live.values():
        runner.catch_up()

    def step() -> None:
        for runner in live.values():
            runner.step()

    now = datetime.now(UTC).replace(microsecond=0)
    taken = seed_tickets(get_application(), random.Random(3), TICKETS, customers, agents, now,
                         after_each=step)  # fmt: skip
    assert taken > 4 * TICKETS
    live["assignment"] = ProjectionRunner(event_source(), store("assignment"), batch_size=7)
    for runner in (live["assignment"], *live.values()):
        runner.catch_up()
    head = event_source().head()

    # Every agent still has room, so a new ticket is assigned automatically under make run.
    capacity = dict(AgentRecord.objects.values_list("user_id", "capacity"))
    load = dict(AgentWorkloadRecord.objects.values_list("agent_user_id", "open_tickets"))
    for agent in agents:
        assert load.get(str(agent.pk), 0) < capacity[str(agent.pk)] == DEMO_CAPACITY

    # The history: ticket events over the past 30 days, in time order across tickets.
    seed = [e.event for e in event_source().read(start, 100_000)]
    stamps = [e.timestamp for e in seed if str(type(e).TOPIC).startswith(TICKET_TOPICS)]
    seeded = [s for s in stamps if s < now]
    assert seeded == sorted(seeded)
    assert min(seeded) >= now - timedelta(days=DAYS)
    assert max(stamps) <= datetime.now(UTC)
    assert min(seeded) < now - timedelta(days=DAYS - 5)
    assert len({s.date() for s in seeded}) >= 15
    # A ticket opens with the problem, not with thanks for its solution.
    opened = [e for e in seed if type(e).__name__ == "TicketOpened"]
    assert len(opened) == TICKETS
    assert all(o.description.split(". ", 1)[1] in OPENING_LINES for o in opened)

    # The dashboard's view of it: created on many days, real first-response and resolution
    # times, tickets in every state.
    m = Metrics(chdb)
    month = Filters((now - timedelta(days=DAYS - 1)).date(), now.date())
    daily = m.daily(month)
    assert sum(d["created"] for d in daily) == TICKETS
    assert sum(1 for d in daily if d["created"]) >= 12
    assert sum(d["resolved"] for d in daily) > 0
    first, resolution = m.first_response(month), m.resolution(month)
    assert first["count"] > 5
    assert first["median"] > 10 * 60
    assert resolution["count"] > 5
    assert resolution["median"] > first["median"]
    assert len([b for b in resolution["distribution"] if b["tickets"]]) >= 3
    statuses = m.status_over_time(month)
    assert sum(statuses[-1]["by_status"].values()) == TICKETS
    assert sum(statuses[0]["by_status"].values()) < TICKETS

    # Live equals rebuilt, projector by projector.
    for name in sorted(STORES):
        built = snapshot(name)
        assert rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in) == head
        assert snapshot(name) == built, name
    built = analytics_snapshot(chdb)
    analytics = analytics_store(chdb)
    assert rebuild(seed_only, analytics, analytics.shadow, analytics.swap_in) == head
    assert analytics_snapshot(chdb) == built
