"""Read-your-writes on Kafka (issue 24): ``?after=<position>`` waits for the projection's
contiguous frontier, so every read sees its own write however unevenly the partitions of two
consumer group members advance. Real broker (Tansu), relay and members as processes."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from command_api.application import Actor, get_application
from config import bootstrap
from domain.lifecycle import Role
from tests.integration.test_kafka import (
    PARTITIONS,
    _stop_leftover_processes,
    applied_versions,
    latest_versions,
    manage,
    topic,
)
from tests.support.history import generate
from tests.support.kafka import kafka_bootstrap, read_topic

__all__ = ["_stop_leftover_processes", "kafka_bootstrap", "topic"]  # fixtures

WRITERS = 6
WRITES_EACH = 25


def stop(procs: list[Any]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        assert p.wait(30) == 0, p.stderr.read() if p.stderr else ""


@pytest.mark.django_db(transaction=True)
def test_every_read_after_a_write_sees_it_with_two_members_across_partitions(
    topic, kafka_bootstrap, make_user, token_for, settings, tmp_path
):
    app = get_application()
    tickets = generate(app, tickets=16, steps=40, seed=71)
    agent = make_user("agent")
    token = token_for(agent)
    settings.READ_AFTER_TIMEOUT = 20.0  # a loaded 2-core machine; a stale read fails below

    name = "read_models"
    member = ("projector", "run", name, "--source", "kafka", "--batch-size", "7")
    procs = [manage(topic, "relay", log=(tmp_path / "relay.log").open("wb"))]
    procs += [
        manage(topic, *member, log=(tmp_path / f"m{i}.log").open("wb"), DESKSTREAM_LOG_LEVEL="INFO")
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while applied_versions(name) != latest_versions():
            assert time.monotonic() < deadline, "the members did not catch up"
            assert all(p.poll() is None for p in procs)
            time.sleep(0.2)

        failures: list[str] = []
        reads = 0
        lock = threading.Lock()

        def writer(seed: int) -> None:
            nonlocal reads
            rng = random.Random(seed)
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            actor = Actor(str(agent.id), Role.AGENT)
            try:
                for i in range(WRITES_EACH):
                    ticket = rng.choice(tickets)
                    body = f"writer {seed} write {i}"
                    done = app.post_message(ticket, actor, body=body, internal=True)
                    r = client.get(f"/api/tickets/{ticket}", {"after": done.position})
                    with lock:
                        reads += 1
                        if r.status_code != 200 or "X-Deskstream-Stale" in r:
                            failures.append(
                                f"{body}: {r.status_code} stale={r.get('X-Deskstream-Stale')}"
                            )
                        elif int(r["ETag"].strip('"')) < done.version:
                            failures.append(
                                f"{body}: ticket at version {r['ETag']}, wrote {done.version} "
                                f"(position {done.position}, read at {r['X-Deskstream-Position']})"
                            )
            finally:
                connection.close()

        threads = [threading.Thread(target=writer, args=(s,)) for s in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert reads == WRITERS * WRITES_EACH
        assert failures == []
        assert all(p.poll() is None for p in procs)
    finally:
        stop(procs)

    # The load really was spread: the tickets written are on several partitions, and both
    # members applied events (each logs the partitions it was given).
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for m in read_topic(kafka_bootstrap, topic, PARTITIONS):
        partitions[m.key].add(m.partition)
    assert len({p for ticket in tickets for p in partitions[str(ticket).encode()]}) >= 3
    for i in range(2):
        assert "partitions owned [" in (tmp_path / f"m{i}.log").read_text()
    assert bootstrap.kafka_store(name).unapplied() == 0


@pytest.mark.django_db
def test_the_frontier_and_the_status_lag_count_exactly_the_unapplied_events():
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    from config.bootstrap import event_source
    from infra.postgres.feed import KAFKA

    # Only this test's events count: earlier files of this test database left events, and
    # their servers a read_models position, that this test takes as applied.
    start = event_source().head()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO projection_position (name, position, updated_at) "
            "VALUES ('read_models', %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            [start],
        )
    generate(get_application(), tickets=6, steps=90, seed=72)
    envelopes = list(event_source().read(start, 100_000))
    head = envelopes[-1].position
    # Two tickets' later events have not arrived (their partitions are behind); the rest,
    # the newest event of the log included, is applied.
    by_ticket: dict[Any, list[Any]] = defaultdict(list)
    for e in envelopes:
        by_ticket[e.aggregate_id].append(e)
    newest = envelopes[-1].aggregate_id
    behind = [es for a, es in by_ticket.items() if len(es) >= 4 and a != newest][:2]
    held = [e for es in behind for e in es[2:]]
    assert len(behind) == 2
    projection = bootstrap.kafka_store("read_models")
    with projection.batch() as batch:
        batch.apply([e for e in envelopes if e not in held])
    first_missing = min(e.position for e in held)
    assert projection.position() == max(e.position for e in envelopes if e.position < first_missing)
    assert projection.unapplied() == len(held)

    # What a Kafka feeder's claim records (infra/postgres/feed.py; earlier tests of this
    # database may have fed read_models from the log).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE projection_position SET source = %s WHERE name = %s", [KAFKA, "read_models"]
        )
    out = StringIO()
    call_command("projector", "status", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if "read_models" in line)
    cells = [c.strip() for c in row.split("│")[1:5]]
    assert cells == ["read_models", "kafka", str(projection.position()), str(len(held))]

    with projection.batch() as batch:  # the late partitions arrive
        batch.apply(held)
    assert projection.position() == head
    assert projection.unapplied() == 0
