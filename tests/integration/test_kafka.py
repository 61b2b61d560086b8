"""Distributed mode on a real Kafka-protocol broker (Tansu): the relay never skips an event,
a projector fed by Kafka equals the embedded one, and instances of one projector share and
hand over partitions with nothing lost or applied twice."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from command_api.application import get_application
from config import bootstrap
from config.bootstrap import event_source, store
from infra.kafka.message import SCHEMA_VERSION, decode
from projections.runner import rebuild
from tests.conftest import ROOT, subprocess_database_url
from tests.integration.test_projections import snapshot
from tests.support.history import generate
from tests.support.kafka import flush_if_transactional, kafka_bootstrap, read_topic

__all__ = ["kafka_bootstrap"]  # the fixture

PARTITIONS = 4
_topics = itertools.count(1)


@pytest.fixture
def topic(kafka_bootstrap: str, settings: Any, request: pytest.FixtureRequest) -> str:
    """A fresh topic and consumer-group prefix per test, with fast group membership (on
    flushed tables, in a transactional test: ``flush_if_transactional``)."""
    flush_if_transactional(request)
    name = on_broker(settings, kafka_bootstrap, f"test.{next(_topics)}")
    assert bootstrap.ensure_topic()
    return name


def on_broker(settings: Any, bootstrap_servers: str, kind: str) -> str:
    """A fresh topic (and group prefix) named for ``kind`` on that broker, fast membership."""
    name = f"deskstream.{kind}.{os.getpid()}.{time.monotonic_ns()}"
    settings.KAFKA_BOOTSTRAP = bootstrap_servers
    settings.KAFKA_TOPIC = name
    settings.KAFKA_PARTITIONS = PARTITIONS
    settings.KAFKA_GROUP_PREFIX = name + "."
    settings.KAFKA_SESSION_TIMEOUT_MS = 3000
    settings.KAFKA_HEARTBEAT_MS = 500
    return name


@pytest.mark.django_db
def test_a_member_started_before_the_relay_creates_the_topic_with_its_partition_count(
    kafka_bootstrap: str, settings: Any
) -> None:
    """The 300 s fault run once found its topic with the broker's default partition count
    (4, not the configured 3): a member had started first and its metadata request had the
    broker create the topic. A member now creates it as the relay would."""
    from kafka import KafkaConsumer

    name = f"deskstream.test.{os.getpid()}.{time.monotonic_ns()}.first"
    settings.KAFKA_BOOTSTRAP = kafka_bootstrap
    settings.KAFKA_TOPIC = name
    settings.KAFKA_PARTITIONS = 3
    settings.KAFKA_GROUP_PREFIX = name + "."
    # A member (the runner a projector process starts) creates it with the configured count.
    runner = bootstrap.kafka_runner("read_models")
    try:
        runner.source.poll(10, 1.0)  # it joins its group and fetches
    finally:
        runner.source.close()
    assert not bootstrap.ensure_topic()  # it exists already
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap, allow_auto_create_topics=False)
    try:
        assert probe.partitions_for_topic(name) == {0, 1, 2}
    finally:
        probe.close()


def subprocess_env(topic: str, **extra: str) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DESKSTREAM_DEBUG": "1",
        "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
        "DESKSTREAM_KAFKA_BOOTSTRAP": settings.KAFKA_BOOTSTRAP,
        "DESKSTREAM_KAFKA_TOPIC": topic,
        "DESKSTREAM_KAFKA_PARTITIONS": str(PARTITIONS),
        "DESKSTREAM_KAFKA_GROUP_PREFIX": topic + ".",
        "DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "DESKSTREAM_KAFKA_HEARTBEAT_MS": "500",
        **extra,
    }


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _stop_leftover_processes() -> Iterator[None]:
    """The relay and the members retry through outages, so one a failed test left running
    would run on: stop what ``manage`` started (by PID) after every test."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def manage(topic: str, *args: str, log: Any = None, **env: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(topic, **env),
        stdout=subprocess.DEVNULL,
        stderr=log or subprocess.PIPE,
    )
    _started.append(proc)
    return proc


def log_positions() -> list[int]:
    with connection.cursor() as cur:
        cur.execute("SELECT notification_id FROM deskstream_events ORDER BY notification_id")
        return [row[0] for row in cur.fetchall()]


def latest_versions() -> dict[Any, int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT originator_id, max(originator_version) FROM deskstream_events GROUP BY 1"
        )
        return dict(cur.fetchall())


def applied_versions(name: str) -> dict[Any, int]:
    with connection.cursor() as cur:
        cur.execute("SELECT aggregate_id, version FROM projection_applied WHERE name = %s", [name])
        return dict(cur.fetchall())


def embedded_result(name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The projection rebuilt from the notification log by the embedded store."""
    rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in)
    return snapshot(name)


# ------------------------------------------------------------------------------ relay
@pytest.mark.django_db
def test_the_relay_publishes_every_event_once_keyed_by_aggregate_in_order(topic, kafka_bootstrap):
    app = get_application()
    generate(app, tickets=12, steps=120, seed=61)
    relay = bootstrap.relay()
    try:
        published = relay.catch_up()
    finally:
        relay.close()
    positions = log_positions()
    assert published == len(positions)
    assert relay.position() == positions[-1]

    messages = read_topic(kafka_bootstrap, topic, PARTITIONS)
    assert sorted(json.loads(m.value)["position"] for m in messages) == positions
    by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)  # key -> [(partition, v)]
    from_log = {e.position: e.event for e in event_source().read(0, len(positions) + 1)}
    for m in messages:
        value = json.loads(m.value)
        assert value["schema_version"] == SCHEMA_VERSION
        assert m.key == value["aggregate_id"].encode()
        assert dict(m.headers)["type"] == value["type"].encode()
        assert value["time"]
        event = from_log[value["position"]]
        assert value["type"].startswith("deskstream.")
        assert value["version"] == event.originator_version
        assert value["ticket_id"] == (
            value["aggregate_id"] if value["type"].startswith("deskstream.ticket:") else None
        )
        by_key[m.key].append((m.partition, value["version"]))
        # The consumer rebuilds exactly the stored domain event from the message.
        _, stored = decode(m.value)
        assert app.mapper.to_domain_event(stored) == event
    for versions in by_key.values():
        assert len({p for p, _ in versions}) == 1  # one aggregate, one partition
        assert [v for _, v in versions] == list(range(1, len(versions) + 1))  # in order


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_at_any_moment_repeats_a_few_events_and_never_skips_one(
    topic, kafka_bootstrap
):
    generate(get_application(), tickets=30, steps=900, seed=62)
    positions = log_positions()
    # Dies right after the broker acknowledged its 3rd batch of 50, before storing position.
    p = manage(topic, "relay", "--until-caught-up", "--batch-size", "50",
               DESKSTREAM_FAULT_RELAY_CRASH_AFTER="3")  # fmt: skip
    assert p.wait(60) == 87, p.stderr.read() if p.stderr else ""
    relay = bootstrap.relay()
    relay.close()
    assert relay.position() == positions[99]  # two batches recorded; the third was not
    published = Counter(json.loads(m.value)["position"] for m in read_topic(
        kafka_bootstrap, topic, PARTITIONS))  # fmt: skip
    assert sorted(published) == positions[:150]

    rng = random.Random(5)
    kills = 3
    for _ in range(kills):
        p = manage(topic, "relay", "--batch-size", "50")
        time.sleep(rng.uniform(1.0, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    p = manage(topic, "relay", "--until-caught-up", "--batch-size", "50")
    assert p.wait(60) == 0, p.stderr.read() if p.stderr else ""

    published = Counter(json.loads(m.value)["position"] for m in read_topic(
        kafka_bootstrap, topic, PARTITIONS))  # fmt: skip
    assert sorted(published) == positions  # every event, none skipped
    repeated = sum(n - 1 for n in published.values())
    assert 50 <= repeated <= 50 * (kills + 1)  # at most one batch per crash


# ------------------------------------------------------------------------------ projectors
def consume_until_caught_up(name: str, batch_size: int) -> None:
    runner = bootstrap.kafka_runner(name)
    runner.batch_size = batch_size
    target = latest_versions()
    deadline = time.monotonic() + 60
    try:
        while applied_versions(name) != target:
            assert time.monotonic() < deadline, "the Kafka projector did not catch up"
            runner.step(0.5)
    finally:
        runner.source.close()


@pytest.mark.django_db
# Analytics (ClickHouse tables) has its own: tests/integration/test_analytics.py.
@pytest.mark.parametrize("name", [n for n in bootstrap.KAFKA_PROJECTORS if n in bootstrap.STORES])
def test_a_projector_fed_by_kafka_equals_the_embedded_one(name, topic):
    app = get_application()
    generate(app, tickets=25, steps=400, seed=63)
    relay = bootstrap.relay()
    try:
        relay.catch_up()
        # Re-deliveries (a relay crash re-publishes a batch): the store must drop them.
        relay.publish(app.recorder.select_notifications(start=1, limit=60))
        generate(app, tickets=5, steps=60, seed=64)
        relay.catch_up()
    finally:
        relay.close()

    consume_until_caught_up(name, batch_size=37)
    from_kafka = snapshot(name)
    assert any(from_kafka.values())
    assert from_kafka == embedded_result(name)


@pytest.mark.django_db
def test_a_stream_batch_applies_each_aggregate_version_once_and_refuses_a_gap():
    from infra.postgres.projection_store import EventGapError

    generate(get_application(), tickets=3, steps=12, seed=65)
    envelopes = list(event_source().read(0, 100_000))
    projection = bootstrap.kafka_store("read_models")
    with projection.batch() as batch:
        batch.apply(envelopes[:5])
        assert batch.applied == 5
    with projection.batch() as batch:
        batch.apply(envelopes)  # the first five again, then the rest
        assert batch.applied == len(envelopes) - 5
    with projection.batch() as batch:
        batch.apply(list(reversed(envelopes)))
        assert batch.applied == 0
    ticket = next(e for e in envelopes if e.version == 1).aggregate_id
    later = [e for e in event_source().read(0, 100_000) if e.aggregate_id == ticket]
    connection.cursor().execute(
        "UPDATE projection_applied SET version = 1 WHERE aggregate_id = %s", [ticket]
    )
    if len(later) >= 3:
        with pytest.raises(EventGapError), projection.batch() as batch:
            batch.apply([later[2]])


def assignments(stderr: bytes) -> list[list[int]]:
    """The partition sets a consumer logged, in order."""
    out = []
    for line in stderr.decode(errors="replace").splitlines():
        # "<timestamp> [info] <group>: partitions owned [0, 3] (assigned [3]) [infra.kafka.source]"
        if found := re.search(r"partitions owned (\[[\d, ]*\])", line):
            out.append(json.loads(found.group(1)))
    return out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_instances_share_partitions_and_hand_them_over_losing_and_repeating_nothing(
    stop, topic, tmp_path
):
    app = get_application()
    generate(app, tickets=40, steps=600, seed=66)
    assert bootstrap.relay().catch_up()
    name = "read_models"
    env = {"DESKSTREAM_LOG_LEVEL": "INFO"}
    args = ("projector", "run", name, "--source", "kafka", "--batch-size", "10")
    logs = [tmp_path / f"consumer{i}.log" for i in range(2)]
    procs = [manage(topic, *args, log=log.open("wb"), **env) for log in logs]
    # Both members own partitions and have applied events.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        all(any(assignments(log.read_bytes())) for log in logs)
        and len(applied_versions(name)) >= 10
    ):
        time.sleep(0.1)
    assert len(applied_versions(name)) >= 10
    procs[0].send_signal(stop)
    assert procs[0].wait(30) in (0, -signal.SIGKILL)
    # More history while the survivor takes over the stopped member's partitions.
    generate(app, tickets=10, steps=200, seed=67)
    relay = bootstrap.relay()
    try:
        relay.catch_up()
    finally:
        relay.close()
    target = latest_versions()
    deadline = time.monotonic() + 90
    while applied_versions(name) != target and time.monotonic() < deadline:
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGTERM)
    assert procs[1].wait(30) == 0
    assert applied_versions(name) == target  # nothing lost

    first = assignments(logs[0].read_bytes())
    survivor = assignments(logs[1].read_bytes())
    assert first
    assert survivor
    assert survivor[-1] == list(range(PARTITIONS))  # it took over every partition
    assert any(len(s) < PARTITIONS for s in survivor)  # they shared the partitions before

    # Applied twice would double message counts and workloads: compare with the log's result.
    from_kafka = snapshot(name)
    assert from_kafka == embedded_result(name)
