"""Analytics through the application: the real event store's log, the real ClickHouse server
(and chDB), Kafka (Tansu), and ``GET /api/analytics/...`` with its permissions and errors."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from command_api.application import get_application
from config import bootstrap
from config.bootstrap import event_source
from infra.clickhouse.native import ClickHouseServerDatabase
from infra.clickhouse.store import ClickHouseProjectionStore
from projections.runner import ProjectionRunner, StreamRunner, rebuild
from tests.contracts.test_analytics_contract import snapshot
from tests.integration.test_kafka import topic
from tests.support.history import generate
from tests.support.kafka import kafka_bootstrap

__all__ = ["kafka_bootstrap", "topic"]  # fixtures

PATHS = [
    "summary",
    "open",
    "daily",
    "status-over-time",
    "first-response",
    "resolution",
    "sla",
    "backlog",
    "drafts",
    "satisfaction",
    "throughput",
    "reopens",
    "volume",
]


def database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


@pytest.fixture
def analytics_db(clickhouse_url: str, settings: Any) -> Iterator[ClickHouseServerDatabase]:
    """A database of its own on the test server, named by the settings the app reads."""
    name = f"it_{uuid.uuid4().hex[:12]}"
    settings.CLICKHOUSE_URL = database_url(clickhouse_url, name)
    db = ClickHouseServerDatabase(settings.CLICKHOUSE_URL)
    try:
        yield db
    finally:
        db.drop()
        db.close()


def open_ticket(client: Any, **data: Any) -> dict[str, Any]:
    body = {"subject": "Printer on fire", "description": "d", "priority": "high", **data}
    r = client.post("/api/tickets", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- the API
@pytest.mark.django_db
def test_only_admins_read_analytics(api, analytics_db):
    _, admin = api("admin")
    _, agent = api("agent")
    _, customer = api("customer")
    for path in PATHS:
        assert admin.get(f"/api/analytics/{path}").status_code == 200, path
        assert agent.get(f"/api/analytics/{path}").status_code == 403, path
        assert customer.get(f"/api/analytics/{path}").status_code == 403, path
    from rest_framework.test import APIClient

    assert APIClient().get("/api/analytics/summary").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("summary", {"tz": "Mars/Olympus"}, "tz"),
        ("summary", {"from": "2026-13-01"}, "from"),
        ("summary", {"to": "yesterday"}, "to"),
        ("daily", {"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ("daily", {"from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ("open", {"priority": "high,blazing"}, "priority"),
        ("backlog", {"agent": ""}, "agent"),
        ("volume", {"tag": " "}, "tag"),
        ("daily", {"team": "sales"}, "team"),
        ("drafts", {"team": ""}, "team"),
        ("volume", {"by": "colour"}, "by"),
        ("summary", {"by": "priority"}, "by"),  # only volume takes it
        ("first-response", {"clock": "lunar"}, "clock"),
        ("daily", {"clock": "business"}, "clock"),  # only the durations take it
        ("sla", {"colour": "red"}, "colour"),
        ("sla", {"after": "soon"}, "after"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(api, analytics_db, path, params, field):
    _, admin = api("admin")
    r = admin.get(f"/api/analytics/{path}", params)
    assert r.status_code == 400, r.content
    assert field in r.json()["fields"], r.json()


@pytest.mark.django_db
def test_an_unreachable_clickhouse_is_a_503(api, settings):
    from tests.conftest import free_port

    settings.CLICKHOUSE_URL = f"clickhouse://127.0.0.1:{free_port()}/nowhere"
    _, admin = api("admin")
    r = admin.get("/api/analytics/summary")
    assert r.status_code == 503, r.content
    assert r.json()["error"] == "analytics_unavailable"
    assert "cannot be reached" in r.json()["detail"]


@pytest.mark.django_db
def test_the_schema_describes_every_analytics_endpoint(api):
    _, admin = api("admin")
    schema = admin.get("/api/schema/", {"format": "json"}).json()
    for path in PATHS:
        operation = schema["paths"][f"/api/analytics/{path}"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"from", "to", "tz", "priority", "agent", "team", "tag", "after"} <= names, path
        assert {"200", "400", "403"} <= set(operation["responses"]), path
    volume = schema["paths"]["/api/analytics/volume"]["get"]
    assert "by" in {p["name"] for p in volume["parameters"]}


@pytest.mark.django_db(transaction=True)
def test_every_answer_is_what_the_schema_says(api, analytics_db):
    """The web app's types are generated from these schemas: each endpoint's answer, on real
    data with a resolved, a reassigned and an open ticket, validates against its schema."""
    from openapi_schema_validator import OAS30Validator

    _, admin = api("admin")
    customer, customer_client = api("customer")
    _, agent = api("agent")
    opened = open_ticket(agent, tags=["schema"], customer_id=customer.pk)
    r = customer_client.post("/api/tickets", {"subject": "S", "description": "d"}, format="json")
    assert r.status_code == 201, r.content
    r = admin.post(f"/api/tickets/{opened['id']}/status", {"status": "closed"}, format="json")
    assert r.status_code == 200, r.content
    bootstrap.runner(bootstrap.ANALYTICS).catch_up()
    schema = admin.get("/api/schema/", {"format": "json"}).json()
    for path in PATHS:
        variants = [{}, {"agent": "none", "tz": "Asia/Tokyo", "team": "none"}]
        if path == "volume":
            variants += [{"by": by} for by in ("tag", "language", "channel")]
        if path in ("first-response", "resolution"):
            variants.append({"clock": "business"})
        answer = schema["paths"][f"/api/analytics/{path}"]["get"]["responses"]["200"]
        ref = answer["content"]["application/json"]["schema"]["$ref"]
        component = {**schema["components"]["schemas"][ref.rsplit("/", 1)[1]]}
        component["components"] = schema["components"]
        validator = OAS30Validator(component)
        for params in variants:
            r = admin.get(f"/api/analytics/{path}", params)
            assert r.status_code == 200, (path, params, r.content)
            errors = [e.message for e in validator.iter_errors(r.json())]
            assert not errors, (path, params, errors)


@pytest.mark.django_db(transaction=True)
def test_after_reads_your_writes_from_clickhouse(api, analytics_db, settings):
    from rest_framework.test import APIClient

    _, admin = api("admin")
    customer, _ = api("customer")
    _, agent = api("agent")
    raw = APIClient()  # no projecting before the read
    raw.credentials(HTTP_AUTHORIZATION=admin._credentials["HTTP_AUTHORIZATION"])
    tag = f"printer-{uuid.uuid4().hex[:8]}"  # the log may hold other tests' tickets
    # Tags are staff's: an agent opens it on the customer's behalf.
    res = open_ticket(agent, tags=[tag], customer_id=customer.pk)

    settings.READ_AFTER_TIMEOUT = 0.2
    r = raw.get("/api/analytics/open", {"after": res["position"], "tag": tag})
    assert r["X-Deskstream-Stale"] == "true"
    assert r.json()["data"]["open"] == 0

    settings.READ_AFTER_TIMEOUT = 10

    def project_later() -> None:
        bootstrap.runner(bootstrap.ANALYTICS).catch_up()
        connection.close()

    t = threading.Timer(0.3, project_later)
    t.start()
    r = raw.get("/api/analytics/open", {"after": res["position"], "tag": tag})
    t.join()
    assert "X-Deskstream-Stale" not in r
    assert int(r["X-Deskstream-Position"]) >= res["position"]
    assert r.json()["data"] == {
        "open": 1,
        "by_status": {"assigned": 0, "in_progress": 0, "open": 1, "waiting_on_customer": 0},
    }
    summary = raw.get("/api/analytics/summary", {"priority": "high", "tag": tag}).json()
    assert summary["data"]["created"] == 1
    assert summary["filters"]["priority"] == ["high"]
    assert (
        raw.get("/api/analytics/summary", {"priority": "low", "tag": tag}).json()["data"]["created"]
        == 0
    )


# ---------------------------------------------------------------------------- the log
@pytest.mark.django_db
@pytest.mark.parametrize("adapter", ["server", "chdb"])
def test_built_live_from_the_log_equals_rebuilt(adapter, clickhouse_url, settings):
    if adapter == "server":
        db: Any = ClickHouseServerDatabase(clickhouse_url, database=f"it_{uuid.uuid4().hex[:12]}")
    else:
        from infra.clickhouse.embedded import ChdbDatabase

        db = ChdbDatabase(settings.ANALYTICS_PATH, database=f"it_{uuid.uuid4().hex[:12]}")
    try:
        live = ProjectionRunner(event_source(), ClickHouseProjectionStore(db), batch_size=7)
        live.catch_up()
        generate(
            get_application(), tickets=25, steps=250, seed=11, after_each=live.step, drafts=True
        )
        live.catch_up()
        head = event_source().head()
        assert live.store.position() == head
        built_live = snapshot(db)
        assert len(built_live["tickets"]) >= 25

        store = ClickHouseProjectionStore(db)
        assert rebuild(event_source(), store, store.shadow, store.swap_in) == head
        assert snapshot(db) == built_live
    finally:
        db.drop()
        db.close()


# ---------------------------------------------------------------------------- Kafka
@pytest.mark.django_db
def test_analytics_fed_by_kafka_equal_the_embedded_build(topic, clickhouse_url):
    """A relay that re-publishes part of the log (as after its crash), consumers that read
    ticket by ticket: the same tables as the build from the notification log, up to the
    position the relay published (other test workers may append to the shared log after)."""
    from infra.kafka import source as kafka_source
    from projections.analytics import NAME

    app = get_application()
    generate(app, tickets=20, steps=300, seed=63)
    relay = bootstrap.relay()
    try:
        relay.catch_up()
        relay.publish(app.recorder.select_notifications(start=1, limit=60))  # re-delivered
        generate(app, tickets=5, steps=60, seed=64)
        relay.catch_up()
        published = relay.position()
    finally:
        relay.close()

    from_kafka = ClickHouseServerDatabase(clickhouse_url, database=f"kafka_{uuid.uuid4().hex[:12]}")
    from_log = ClickHouseServerDatabase(clickhouse_url, database=f"log_{uuid.uuid4().hex[:12]}")
    try:
        from django.conf import settings

        consumer = kafka_source.consumer(
            settings.KAFKA_BOOTSTRAP,
            settings.KAFKA_TOPIC,
            bootstrap.group_id(NAME),
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
            max_poll_records=37,
        )
        source = kafka_source.KafkaStreamSource(consumer, app.mapper)
        runner = StreamRunner(source, ClickHouseProjectionStore(from_kafka), batch_size=37)
        ProjectionRunner(
            _Through(event_source(), published), ClickHouseProjectionStore(from_log)
        ).catch_up()
        expected = len(snapshot(from_log)["events"])
        # Until every one has come: an idle poll alone ends early when a loaded machine holds
        # the broker's answer longer than the idle wait.
        deadline = time.monotonic() + 120
        try:
            runner.catch_up(idle=3.0)
            while len(snapshot(from_kafka)["events"]) < expected and time.monotonic() < deadline:
                runner.catch_up(idle=3.0)
        finally:
            source.close()

        kafka_tables, log_tables = snapshot(from_kafka), snapshot(from_log)
        assert expected > 0
        assert len(kafka_tables["events"]) == expected
        assert kafka_tables == log_tables
    finally:
        from_kafka.drop()
        from_log.drop()


class _Through:
    """The log as it was up to ``last`` (a batch of the runner may read past its target)."""

    def __init__(self, source: Any, last: int) -> None:
        self.source, self.last = source, last

    def head(self) -> int:
        return min(self.source.head(), self.last)

    def read(self, after: int, limit: int) -> Any:
        return [e for e in self.source.read(after, limit) if e.position <= self.last]

    def wait(self, after: int, timeout: float) -> None:
        self.source.wait(after, timeout)


# ---------------------------------------------------------------------------- team, drafts
@pytest.mark.django_db(transaction=True)
def test_the_team_filter_and_the_draft_metric_through_the_api(
    api, analytics_db, settings, fake_openai
):
    """A ticket routed to a team, a draft asked for, edited and sent: the dashboard's team
    filter finds the ticket, and the agent's acceptance and edit are the events' own."""
    from rapidfuzz.distance import Levenshtein

    from infra.llm import store

    settings.LLM_BASE_URL, settings.LLM_MODEL = fake_openai.url, "fake-model"
    store._loaded = None
    _, admin = api("admin")
    customer, _ = api("customer")
    agent_user, agent = api("agent")
    r = admin.post("/api/admin/teams", {"name": f"Team {uuid.uuid4().hex[:6]}"}, format="json")
    assert r.status_code == 201, r.content
    team = r.json()["id"]
    tag = f"teamed-{uuid.uuid4().hex[:8]}"
    ticket = open_ticket(agent, tags=[tag], customer_id=customer.pk)["id"]
    r = admin.put(f"/api/tickets/{ticket}/team", {"team_id": team}, format="json")
    assert r.status_code == 200, r.content
    r = agent.post(f"/api/tickets/{ticket}/drafts", {}, format="json")
    assert r.status_code == 202, r.content
    draft = r.json()["draft"]
    assert draft["status"] == "ready", draft
    reply = draft["text"] + " Kind regards."
    r = agent.post(
        f"/api/tickets/{ticket}/messages", {"body": reply, "draft_id": draft["id"]}, format="json"
    )
    assert r.status_code == 201, r.content
    bootstrap.runner(bootstrap.ANALYTICS).catch_up()

    assert admin.get("/api/analytics/open", {"team": team}).json()["data"]["open"] == 1
    nowhere = admin.get("/api/analytics/open", {"team": "none", "tag": tag}).json()
    assert nowhere["data"]["open"] == 0
    answer = admin.get("/api/analytics/drafts", {"team": team}).json()
    assert answer["filters"]["team"] == team
    distance = Levenshtein.distance(draft["text"], reply)
    assert answer["data"] == [
        {
            "agent_id": str(agent_user.pk),
            "drafts": 1,
            "sent": 1,
            "acceptance_pct": 100.0,
            "edit_distance_avg": float(distance),
            "edit_pct_avg": round(100.0 * distance / len(draft["text"]), 2),
        }
    ]
    store._loaded = None
