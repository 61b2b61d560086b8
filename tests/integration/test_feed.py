"""One source feeds a projection: a feeder from the log and one from Kafka are never both
running, and tables built from one source are not fed from the other until a rebuild
switches them (infra/postgres/feed.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from command_api.application import get_application
from config import bootstrap
from config.bootstrap import event_source
from infra.postgres.event_source import conninfo_from_django
from infra.postgres.feed import KAFKA, LOG, FeedConflictError, FeedLeases
from tests.conftest import ROOT
from tests.integration.test_kafka import subprocess_env, topic
from tests.support.history import generate
from tests.support.kafka import kafka_bootstrap
from tests.support.netfault import FaultProxy

__all__ = ["kafka_bootstrap", "topic"]  # fixtures

NAME = "read_models"


@pytest.fixture
def leases() -> Iterator[Any]:
    """``leases(label)``: a FeedLeases of its own connection (as another process has)."""
    made: list[FeedLeases] = []

    def make(label: str) -> FeedLeases:
        made.append(FeedLeases(conninfo_from_django(settings.DATABASES["default"]), label))
        return made[-1]

    yield make
    for lease in made:
        lease.close()


def recorded_source(name: str = NAME) -> tuple[int, str | None]:
    with connection.cursor() as cur:
        cur.execute("SELECT position, source FROM projection_position WHERE name = %s", [name])
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


@pytest.mark.django_db(transaction=True)
def test_a_live_feeder_of_one_source_refuses_a_feeder_of_the_other(leases):
    run_all = leases("projector run-all")
    run_all.claim(NAME, LOG)
    leases("projector run read_models").claim(NAME, LOG)  # the same source shares the lease
    with pytest.raises(FeedConflictError) as refused:
        leases("projector run read_models --source kafka").claim(NAME, KAFKA)
    message = str(refused.value)
    assert "being fed from the notification log by deskstream projector run-all pid" in message
    assert "`manage.py projector rebuild read_models --source kafka`" in message
    assert "--projectors none" in message

    run_all.close()
    with pytest.raises(FeedConflictError):  # the other log feeder still runs
        leases("projector run read_models --source kafka").claim(NAME, KAFKA)


def claim_together(members: list[FeedLeases], source: str) -> list[BaseException]:
    """Every member claims ``source`` at the same moment; what they raised."""
    for member in members:
        member._connection()  # connected first, so that the claims run together
    start = threading.Barrier(len(members))
    failures: list[BaseException] = []

    def claim(member: FeedLeases) -> None:
        start.wait()
        try:
            member.claim(NAME, source)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=claim, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return failures


@pytest.mark.django_db(transaction=True)
def test_feeders_of_one_source_starting_together_never_refuse_each_other(leases):
    """Kafka members (or log projectors) starting at once share their source's lease; none
    takes the other source's lock, not even for a moment, so none sees a writer that is not
    there."""
    for source in (KAFKA, LOG, KAFKA):
        members = [leases(f"member {i}") for i in range(6)]
        failures = claim_together(members, source)
        assert not failures, failures[0]
        for member in members:
            member.close()


@pytest.mark.django_db(transaction=True)
def test_once_the_log_feeders_are_gone_an_empty_projection_may_go_to_kafka_and_back(leases):
    leases("projector run-all").claim(NAME, LOG)
    assert recorded_source() == (0, LOG)
    consumer = leases("projector run read_models --source kafka")
    with pytest.raises(FeedConflictError):
        consumer.claim(NAME, KAFKA)  # run-all's lease is still held
    # A feeder's lease ends with its connection, however its process ends.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            "AND application_name LIKE 'deskstream projector run-all %%'"
        )
    time.sleep(0.2)
    consumer.claim(NAME, KAFKA)  # position 0: nothing applied, nothing to refuse
    assert recorded_source() == (0, KAFKA)
    with pytest.raises(FeedConflictError) as refused:
        leases("projector run-all").claim(NAME, LOG)
    message = str(refused.value)
    assert "being fed from Kafka by deskstream projector run read_models --source kafka" in (
        message
    )
    assert "`manage.py projector rebuild read_models`" in message


@pytest.mark.django_db(transaction=True)
def test_tables_built_from_one_source_refuse_the_other_until_a_rebuild_switches_them(leases):
    generate(get_application(), tickets=4, steps=30, seed=71)
    envelopes = list(event_source().read(0, 100_000))
    consumer = leases("projector run read_models --source kafka")
    consumer.claim(NAME, KAFKA)
    with bootstrap.kafka_store(NAME).batch() as batch:  # what a Kafka consumer's batch does
        batch.apply(envelopes)
    consumer.close()
    position = envelopes[-1].position
    assert recorded_source() == (position, KAFKA)

    with pytest.raises(FeedConflictError) as refused:
        leases("projector run read_models").claim(NAME, LOG)
    assert "was built from Kafka (projection_position 'read_models': source 'kafka', " in str(
        refused.value
    )
    assert f"position {position})" in str(refused.value)

    call_command("projector", "rebuild", NAME, stdout=io.StringIO())
    assert recorded_source() == (position, LOG)
    leases("projector run read_models").claim(NAME, LOG)
    with pytest.raises(FeedConflictError) as refused:
        leases("kafka consumer").claim(NAME, KAFKA)
    assert "being fed from the notification log" in str(refused.value)


def manage(topic: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(topic, DESKSTREAM_LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_lease(source: str, name: str = NAME, timeout: float = 60.0) -> None:
    """Until a process holds the lease of ``name`` fed from ``source``."""
    deadline = time.monotonic() + timeout
    label = "run-all" if source == LOG else f"run {name} --source kafka"
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND a.datname = current_database() "
                "AND a.application_name LIKE %s",
                [f"deskstream projector {label} %"],
            )
            if cur.fetchone()[0]:
                return
        time.sleep(0.1)
    raise AssertionError(f"no process took the {source} lease of {name}")


def stop(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    return out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
def test_a_kafka_consumer_refuses_to_start_while_run_all_feeds_the_projection(topic):
    run_all = manage(topic, "projector", "run-all")
    try:
        wait_for_lease(LOG)
        consumer = manage(topic, "projector", "run", NAME, "--source", "kafka")
        err = consumer.communicate(timeout=60)[1].decode(errors="replace")
        assert consumer.returncode == 1, err
        assert "projector read_models is being fed from the notification log by deskstream " in (
            err
        )
        assert "projector run-all pid" in err
        assert "rebuild read_models --source kafka" in err
        assert run_all.poll() is None  # the live feeder goes on
    finally:
        stop(run_all)


@pytest.mark.django_db(transaction=True)
def test_run_all_skips_and_a_log_projector_refuses_what_a_kafka_consumer_feeds(topic):
    consumer = manage(topic, "projector", "run", NAME, "--source", "kafka")
    try:
        wait_for_lease(KAFKA)
        log_feeder = manage(topic, "projector", "run", NAME)
        err = log_feeder.communicate(timeout=60)[1].decode(errors="replace")
        assert log_feeder.returncode == 1, err
        assert "projector read_models is being fed from Kafka by deskstream projector run " in err
        assert "`manage.py projector rebuild read_models`" in err

        run_all = manage(topic, "projector", "run-all")
        deadline = time.monotonic() + 60
        while run_all.poll() is None and time.monotonic() < deadline:
            with connection.cursor() as cur:  # it has started the projectors it may run
                cur.execute("SELECT source FROM projection_position WHERE name = 'sla'")
                if cur.fetchone() == (LOG,):
                    break
            time.sleep(0.1)
        time.sleep(0.5)
        assert run_all.poll() is None
        out, err = stop(run_all)
        assert "not running projector read_models here: projector read_models is being fed " in (
            err
        )
        running = out.split("projectors running: ", 1)[1].splitlines()[0].split(", ")
        assert "projector-read_models" not in running
        assert "projector-sla" in running
        assert consumer.poll() is None
    finally:
        stop(consumer)


@pytest.mark.django_db(transaction=True)
def test_claiming_the_log_feeds_rides_out_a_dropped_connection():
    """Issue 22: a projector process that claimed its feeds while its lease connection was
    cut (the fault run's proxy) exited; now it waits and claims them all again."""
    db = settings.DATABASES["default"]
    proxy = FaultProxy()
    try:
        port = proxy.add("postgres", int(db["PORT"] or 5432))
        through = FeedLeases(conninfo_from_django({**db, "HOST": "127.0.0.1", "PORT": port}),
                             "projector run-all")  # fmt: skip
        try:
            through.claim("search", LOG)
            assert proxy.cut("postgres") == 1  # the session, and the lease it held, end
            claimed = bootstrap.claim_log_feeds("projector run-all", ["search", NAME],
                                                leases=through)  # fmt: skip
            assert claimed == ["search", NAME]
            assert proxy.counts["postgres connections"] == 2  # a new session holds both
        finally:
            through.close()
    finally:
        proxy.close()
