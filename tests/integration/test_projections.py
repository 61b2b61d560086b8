"""The projection engine on PostgreSQL: exactly once, crash-safe, rebuildable beside the live
copy."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from django.db import connection

from command_api.application import get_application
from config.bootstrap import STORES, event_source, runner, store
from projections.runner import ProjectionRunner, rebuild
from tests.conftest import ROOT, subprocess_database_url
from tests.support.history import generate

ORDER = {
    "rm_ticket": "id",
    "rm_message": "id",
    "rm_agent": "id",
    "rm_agent_workload": "agent_user_id",
    "rm_customer_stats": "customer_id",
    "rm_search_doc": "key",
    "rm_assign_agent": "user_id",
    "rm_assign_ticket": "id",
    "rm_assign_team": "id",
    "rm_macro": "id",
    "rm_sla": "ticket_id",
    "rm_notification": "id",
    "rm_notification_ticket": "id",
}


def snapshot(name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of projector ``name`` (what readers can see)."""
    out = {}
    with connection.cursor() as cur:
        for table in store(name).tables:
            cur.execute(f'SELECT * FROM "{table}" ORDER BY "{ORDER.get(table, "1")}"')  # noqa: S608
            out[table] = cur.fetchall()
    return out


def outbox_rows() -> list[tuple[Any, ...]]:
    """The e-mail outbox: never part of a rebuild."""
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM notification_outbox ORDER BY id")
        return cur.fetchall()


def head() -> int:
    return event_source().head()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(STORES))
def test_state_built_live_equals_state_rebuilt_from_zero(name):
    live = ProjectionRunner(event_source(), store(name), batch_size=7)
    live.catch_up()
    # Live: the projector follows while the history is being written, a few events at a time.
    generate(get_application(), tickets=25, steps=250, seed=11, after_each=live.step, drafts=True)
    live.catch_up()
    assert live.store.position() == head()
    with connection.cursor() as cur:  # drafts are in the log, each of the three events
        cur.execute(
            "SELECT count(DISTINCT topic) FROM deskstream_events"
            " WHERE topic IN ('deskstream.ticket:DraftRequested',"
            " 'deskstream.ticket:DraftGenerated', 'deskstream.ticket:ReplySentFromDraft')"
        )
        assert cur.fetchone() == (3,)
    built_live = snapshot(name)
    assert built_live["rm_ticket" if name == "read_models" else store(name).tables[0]]

    outbox = outbox_rows()
    position = rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in)
    assert position == head()
    assert snapshot(name) == built_live
    assert outbox_rows() == outbox  # a rebuild e-mails nothing again (ADR 0012)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["read_models", "search"])
@pytest.mark.parametrize("in_memory", [None, 3], ids=["tickets-in-memory", "spilling"])
def test_a_bulk_loaded_rebuild_equals_one_built_batch_by_batch(name, in_memory, monkeypatch):
    """A rebuild loads its copy as one unit of work: tickets written once at the end,
    messages on a writer thread while the next chunk is applied, and past a memory limit
    everything written and read back. Chunks of 5 make all of that happen many times."""
    from infra.postgres import readmodels
    from infra.postgres import search as pg_search

    if in_memory is not None:
        monkeypatch.setattr(readmodels, "BULK_TICKETS_IN_MEMORY", in_memory)
        monkeypatch.setattr(pg_search, "BULK_TICKETS_IN_MEMORY", in_memory)
    generate(get_application(), tickets=30, steps=300, seed=5)
    ProjectionRunner(event_source(), store(name), batch_size=5).catch_up()
    built = snapshot(name)

    writes: list[str] = []
    state_class = {"read_models": readmodels.PostgresTicketsState}.get(
        name, pg_search.PostgresSearchState
    )
    take = state_class.take_settled

    def counted(self: Any) -> Any:
        write = take(self)
        if write is not None:
            writes.append(threading.current_thread().name)
        return write

    monkeypatch.setattr(state_class, "take_settled", counted)
    position = rebuild(
        event_source(), store(name), store(name).shadow, store(name).swap_in, batch_size=5
    )
    assert position == head()
    assert snapshot(name) == built
    assert len(writes) > 10  # the chunks' settled rows went out one write per chunk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["read_models", "search"])
def test_a_rebuild_outside_a_transaction_builds_its_indexes_on_their_own_connections(name):
    """Outside a transaction (as ``projector rebuild`` runs) the deferred indexes are built
    two at a time on connections of their own; after the swap the tables have exactly the
    indexes, by name and definition, that they had before, and answer as before."""
    generate(get_application(), tickets=15, steps=120, seed=8)
    ProjectionRunner(event_source(), store(name), batch_size=50).catch_up()
    built = snapshot(name)

    def indexes() -> list[tuple[str, str]]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1",
                [store(name).tables],
            )
            return cur.fetchall()

    before = indexes()
    assert any(n in dict(before) for n in store(name).deferred_indexes)
    rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in)
    assert indexes() == before
    assert snapshot(name) == built


@pytest.mark.django_db
def test_a_failed_bulk_load_writes_nothing(monkeypatch):
    generate(get_application(), tickets=10, steps=80, seed=6)
    shadow = store("read_models").shadow()
    envelopes = list(event_source().read(0, 1000))
    calls = [0]
    from projections import tickets

    real = tickets.handle

    def failing(envelope: Any, state: Any) -> None:
        calls[0] += 1
        if calls[0] == 60:
            raise RuntimeError("the projector failed")
        real(envelope, state)

    monkeypatch.setattr(tickets, "handle", failing)

    def load() -> None:
        with shadow.bulk() as batch:
            for start in range(0, len(envelopes), 10):
                batch.apply(envelopes[start : start + 10])  # 5 chunks written, then it fails

    with pytest.raises(RuntimeError, match="the projector failed"):
        load()
    assert shadow.position() == 0
    with connection.cursor() as cur:
        cur.execute('SELECT count(*) FROM "rm_message__rebuild"')
        assert cur.fetchone()[0] == 0


@pytest.mark.django_db
def test_readers_see_the_old_copy_until_the_swap():
    name = "read_models"
    generate(get_application(), tickets=5, steps=20, seed=3)
    runner(name).catch_up()
    with connection.cursor() as cur:
        cur.execute("UPDATE rm_ticket SET subject = 'OLD COPY'")
    live = store(name)
    shadow = live.shadow()
    ProjectionRunner(event_source(), shadow).catch_up()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM rm_ticket WHERE subject <> 'OLD COPY'")
        assert cur.fetchone() == (0,)  # readers still on the old copy
        cur.execute("SELECT count(*) FROM rm_ticket__rebuild WHERE subject = 'OLD COPY'")
        assert cur.fetchone() == (0,)
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'rm_ticket'")
        index_names = sorted(r[0] for r in cur.fetchall())
    live.swap_in(shadow)
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'rm_ticket'")
        assert sorted(r[0] for r in cur.fetchall()) == index_names  # migrations find them
        assert "rm_ticket_status_created" in index_names
        cur.execute("SELECT count(*) FROM rm_ticket WHERE subject = 'OLD COPY'")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT to_regclass('rm_ticket__rebuild'), to_regclass('rm_ticket__old')")
        assert cur.fetchone() == (None, None)
    assert live.position() == head()


def index_definitions(table: str) -> dict[str, str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes WHERE tablename = %s",
            [f"ON public.{table} ", table],
        )
        return dict(cur.fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "table"), [("read_models", "rm_ticket"), ("search", "rm_search_doc")]
)
def test_a_rebuild_loads_without_the_deferred_indexes_and_swaps_in_with_all(name, table):
    generate(get_application(), tickets=5, steps=30, seed=5)
    live = store(name)
    assert live.deferred_indexes
    before = index_definitions(table)
    assert set(live.deferred_indexes) & set(before)
    shadow = live.shadow()
    ProjectionRunner(event_source(), shadow).catch_up()
    loading = index_definitions(table + "__rebuild")
    assert not {i + "__rb" for i in live.deferred_indexes} & set(loading)
    assert len(loading) == len(before) - len(set(live.deferred_indexes) & set(before))
    live.swap_in(shadow)
    assert index_definitions(table) == before  # same names, same definitions


@pytest.mark.django_db
def test_a_second_batch_on_the_same_position_applies_nothing():
    generate(get_application(), tickets=3, steps=10, seed=5)
    projection = store("read_models")
    source = event_source()
    envelopes = source.read(0, 100_000)
    with projection.batch() as batch:
        batch.apply(envelopes)
    before = snapshot("read_models")
    with projection.batch() as batch:
        batch.apply(envelopes)  # the same events again: all at or below the position
        assert batch.applied == 0
    assert snapshot("read_models") == before


# ---------------------------------------------------------------- processes
def projector_process(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "projector", "run", name, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "DESKSTREAM_DEBUG": "1",
            "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
            **(env or {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def rebuilt_elsewhere(name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The state a fresh rebuild produces (then put back what was live)."""
    current = snapshot(name)
    rebuild(event_source(), store(name), store(name).shadow, store(name).swap_in)
    rebuilt = snapshot(name)
    return {"current": current, "rebuilt": rebuilt}  # type: ignore[dict-item]


@pytest.mark.django_db(transaction=True)
def test_a_projector_killed_mid_batch_resumes_where_its_last_commit_left_it():
    generate(get_application(), tickets=40, steps=400, seed=21)
    target = head()
    # Dies after handling 250 events of its 3rd batch of 100 (positions 201..300 uncommitted).
    p = projector_process(
        "read_models", "--batch-size", "100", env={"DESKSTREAM_FAULT_CRASH_AFTER": "250"}
    )
    assert p.wait(60) == 86
    position = store("read_models").position()
    assert position > 0
    assert position < target
    with connection.cursor() as cur:
        cur.execute("SELECT max(position) FROM rm_ticket")
        (max_row_position,) = cur.fetchone()
    assert max_row_position <= position  # nothing of the unfinished batch was written

    p = projector_process("read_models", "--until-caught-up")
    assert p.wait(60) == 0, p.stderr.read() if p.stderr else ""
    assert store("read_models").position() == target
    states = rebuilt_elsewhere("read_models")
    assert states["current"] == states["rebuilt"]


@pytest.mark.django_db(transaction=True)
def test_a_projector_killed_at_a_random_moment_loses_and_repeats_nothing():
    generate(get_application(), tickets=60, steps=1500, seed=33)
    target = head()
    rng = random.Random(7)
    for _ in range(3):
        p = projector_process("read_models", "--batch-size", "50")
        time.sleep(rng.uniform(0.3, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    p = projector_process("read_models", "--until-caught-up")
    assert p.wait(120) == 0
    assert store("read_models").position() == target
    states = rebuilt_elsewhere("read_models")
    assert states["current"] == states["rebuilt"]


@pytest.mark.django_db(transaction=True)
def test_two_instances_of_one_projector_never_both_apply_an_event():
    generate(get_application(), tickets=50, steps=800, seed=44)
    target = head()
    procs = [projector_process("read_models", "--batch-size", "20") for _ in range(2)]
    deadline = time.monotonic() + 90
    while store("read_models").position() < target and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(20)
    assert store("read_models").position() == target
    # Double application would double message counts and workloads: compare with a rebuild.
    states = rebuilt_elsewhere("read_models")
    assert states["current"] == states["rebuilt"]


@pytest.mark.django_db(transaction=True)
def test_in_thread_runners_share_work_exactly_once():
    generate(get_application(), tickets=20, steps=300, seed=55)
    target = head()
    stop = threading.Event()

    def follow() -> None:
        r = runner("read_models")
        r.batch_size = 15
        try:
            r.run(stop, idle_timeout=0.2)
        finally:
            r.source.close()
            connection.close()

    threads = [threading.Thread(target=follow) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while store("read_models").position() < target and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(10)
    assert store("read_models").position() == target
    states = rebuilt_elsewhere("read_models")
    assert states["current"] == states["rebuilt"]


@pytest.mark.django_db(transaction=True)
def test_projector_processes_started_together_all_come_up():
    """Deployments start every projector at once; each builds the application, whose event
    store setup (``CREATE ... IF NOT EXISTS``) races the others' (PostgreSQL answers one of
    them 'tuple concurrently updated'). Every process must come up all the same."""
    procs = [projector_process(name, "--until-caught-up") for name in sorted(STORES) * 2]
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace")[-600:])
    assert not failures, failures[0]
