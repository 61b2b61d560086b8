"""Command throughput: ``POST /api/tickets/{id}/messages`` over HTTP, against the ceiling.

Run it as ``.venv/bin/python bench/commands.py [--duration S] [--db-url URL]`` (``make bench``).

What it does, in one run:

1. Starts PostgreSQL the way ``make run`` does (the embedded server, here in a fresh
   ``var/bench-pg`` so ``make run``'s own ``var/pg`` is left alone), or uses ``--db-url``.
2. For each server variant (the default as ``make run`` starts it; group commit off; two
   uvicorn workers; projectors in threads of the server process, the old layout) starts
   ``python -m infra.server.launcher`` on a free port, waits until it answers, records the idle
   memory of everything it started (launcher process tree plus the PostgreSQL server), then
   runs closed-loop clients that each post messages as fast as they get answers, for 1, 8
   and 32 concurrent clients (and 8 clients on one ticket), each over its own keep-alive
   connection. Each phase opens fresh tickets first and starts its load once the projectors
   have caught up with them and the e-mails they caused are sent (``wait_for_setup``).
3. Measures the ceiling: raw appends through the library to the same database, one event
   per commit (1 and 8 threads) and 100 events per commit, with no server running.
4. Writes ``bench/results/commands.json`` and renders its section of ``docs/benchmarks.md``
   from it (``bench/benchlib.py``), and stops everything it started, by PID.

``--baseline REV`` adds the default server of git revision ``REV``, checked out in a
temporary worktree (``git worktree add --detach``) and started from there with this tree's
virtualenv, on a database of its own that its code migrates (``sibling_database``),
interleaved with this tree's default server; the results show both side by side and their
ratio (``--only default,baseline --baseline main`` for just that comparison).

The load generator is a minimal HTTP/1.1 client on asyncio streams rather than httpx: on a
2-core machine the client shares the CPU with the server, and httpx costs ~3 ms of CPU per
request (measured: 0.29 cores for 90 requests/s), so it alone could not produce 1,000
requests/s here; this one costs a few tenths of a millisecond. Its CPU use is measured and
reported with every row.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
import psycopg

from bench.benchlib import (
    BASE_DIR,
    AppServer,
    Database,
    RawHTTP,
    background_cores,
    column,
    cpu_seconds,
    git,
    log,
    machine,
    machine_busy_seconds,
    memory,
    percentile,
    post_bytes,
    publish,
    ratio,
    results,
    start_database,
    stop_database,
    table,
    tree,
    with_database,
)

BENCH = "commands"
BENCH_PG = BASE_DIR / "var" / "bench-pg"
TICKET_POOL = 64  # tickets per phase, spread over the clients (each owns its own)
TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
TARGET_MEMORY = 1024**3
NOISY_CPU = 0.25  # cores used by other processes during a phase before its row is flagged
PG_SETTINGS = (
    "max_connections",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "commit_delay",
)
# Server settings a caller's environment could change; every variant starts from defaults.
TUNING_VARS = (
    "DESKSTREAM_GROUP_COMMIT",
    "DESKSTREAM_GROUP_COMMIT_MAX_BATCH",
    "DESKSTREAM_EVENTSTORE_POOL_SIZE",
    "DESKSTREAM_CONN_MAX_AGE",
    "DESKSTREAM_DB_POOL_SIZE",
    "DESKSTREAM_DEBUG",
    "DESKSTREAM_PROJECTORS_IN_PROCESS",
    "DESKSTREAM_PROJECTORS_MODE",
    "DESKSTREAM_PROJECTION_BATCH_SIZE",
    "DESKSTREAM_PROJECTION_INTERVAL_MS",
    "DESKSTREAM_HOST",
    "DESKSTREAM_PORT",
)
# --server-env KEY=VALUE: extra environment for every server (experiments; noted in the doc).
SERVER_ENV: dict[str, str] = {}


# ------------------------------------------------------------------------------ processes
def projector_processes(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The launcher's ``manage.py projector run-all`` child, if it runs one."""
    found = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if "run-all" in p.cmdline():
                found.append(p)
    return found


@dataclass
class Memory:
    server_rss: int
    server_pss: int
    server_procs: int
    pg_rss: int
    pg_pss: int
    pg_procs: int

    @property
    def rss(self) -> int:
        return self.server_rss + self.pg_rss

    @property
    def pss(self) -> int:
        return self.server_pss + self.pg_pss


def memory_of(server_pid: int, pg_pid: int | None) -> Memory:
    return Memory(*memory(tree(server_pid)), *memory(tree(pg_pid)))


def sibling_database(db: Database, suffix: str) -> Database:
    """A fresh database beside ``db`` on the same PostgreSQL server, dropped by
    ``stop_database`` (before ``db``'s server stops), for the server of a baseline revision:
    that server migrates it with its own code. On ``db``, migrated by this tree, its
    projectors would write rows this schema refuses (11a29e6's read models leave
    ``rm_ticket.public_position`` NULL: NotNullViolation on every batch) and so do less work
    under load than this tree's, which flattered the baseline."""
    name = f"{db.name}_{suffix}"
    admin = with_database(db.url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return dataclasses.replace(
        db, url=with_database(db.url, name), name=name, admin_url=admin, embedded=None, _conn=None
    )


# ------------------------------------------------------------------------------ postgres
def db_counters(db: Database) -> dict[str, int]:
    rows = db.query(
        "SELECT sessions, xact_commit, (SELECT coalesce(max(notification_id), 0) "
        "FROM deskstream_events) FROM pg_stat_database WHERE datname = current_database()"
    )
    sessions, commits, last = rows[0]
    return {"sessions": int(sessions), "commits": int(commits), "last": int(last)}


def events_and_transactions(db: Database, after: int) -> tuple[int, int]:
    """Events appended after notification ``after`` and the transactions that wrote them."""
    rows = db.query(
        "SELECT count(*), count(DISTINCT xmin::text) FROM deskstream_events "
        "WHERE notification_id > %s",
        (after,),
    )
    return int(rows[0][0]), int(rows[0][1])


class ConnectionSampler:
    """Peak number of connections to the database while a phase runs (every 0.25 s)."""

    def __init__(self, db: Database) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._conn = psycopg.connect(db.url, autocommit=True)  # opened before the load
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        while not self._stop.is_set():
            with contextlib.suppress(psycopg.Error):
                row = self._conn.execute(sql).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
            self._stop.wait(0.25)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(psycopg.Error):
            self._conn.close()
        return self.peak


# ------------------------------------------------------------------------------ ceiling
@dataclass
class CeilingRow:
    label: str
    threads: int
    events_per_commit: int
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def commits_per_s(self) -> float:
        return self.events / self.events_per_commit / self.seconds


def measure_ceiling(db: Database, n_events: int, threads: int) -> list[CeilingRow]:
    """Raw appends through the library to the same database, no HTTP, no Django."""
    from command_api.application import DeskstreamApplication, eventstore_env
    from domain.lifecycle import Role
    from domain.ticket import Ticket
    from infra.postgres.connection import database_from_url

    app = DeskstreamApplication(
        eventstore_env(database_from_url(db.url), pool_size=threads), group_commit=False
    )

    def tickets(n: int) -> list[Ticket]:
        return [
            Ticket.open(
                customer_id="bench-ceiling",
                subject="Ceiling ticket",
                description="Raw append, one event.",
                actor_id="bench-ceiling",
                actor_role=Role.CUSTOMER,
            )
            for _ in range(n)
        ]

    def timed(fn: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    rows: list[CeilingRow] = []
    try:
        for t in tickets(50):  # warm the pool and prepared statements
            app.save(t)

        def save_each(aggregates: list[Ticket]) -> None:
            for t in aggregates:
                app.save(t)

        batch = tickets(n_events)
        secs = timed(lambda: save_each(batch))
        rows.append(CeilingRow("app.save(1 new aggregate)", 1, 1, n_events, secs))

        stored = [
            app.mapper.to_stored_event(e) for t in tickets(n_events) for e in t.collect_events()
        ]
        recorder = app.recorder

        def insert_each() -> None:
            for s in stored:
                recorder.insert_events([s])

        secs = timed(insert_each)
        rows.append(CeilingRow("recorder.insert_events([1 event])", 1, 1, n_events, secs))

        batch = tickets(n_events)
        chunks = [batch[i::threads] for i in range(threads)]

        def run_threads() -> None:
            workers = [threading.Thread(target=save_each, args=(c,)) for c in chunks]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        secs = timed(run_threads)
        rows.append(CeilingRow("app.save(1 new aggregate)", threads, 1, n_events, secs))

        per = 100
        batch = tickets(max(per * 10, (n_events // per) * per))
        groups = [batch[i : i + per] for i in range(0, len(batch), per)]

        def save_groups() -> None:
            for g in groups:
                app.save(*g)

        secs = timed(save_groups)
        rows.append(CeilingRow("app.save(100 new aggregates)", 1, per, len(batch), secs))
    finally:
        app.close()
    return rows


# ------------------------------------------------------------------------------ HTTP load
@dataclass
class LoadResult:
    latencies: list[float]
    errors: collections.Counter[str]
    seconds: float
    client_cpu: float
    total_requests: int  # warm-up included, to relate to database counters


async def closed_loop(
    port: int, requests: list[list[bytes]], duration: float, warmup: float
) -> LoadResult:
    """Client ``i`` sends ``requests[i]`` round-robin, one at a time, until time is up."""
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    sent = [0]
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2
    measure_from = begin + warmup
    end = measure_from + duration

    async def client(mine: list[bytes]) -> None:
        conn = RawHTTP(port)
        await conn.connect()
        await asyncio.sleep(max(0.0, begin - loop.time()))
        i = 0
        try:
            while (t0 := loop.time()) < end:
                data = mine[i % len(mine)]
                i += 1
                try:
                    status, body = await conn.request(data)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, body = 0, type(exc).__name__.encode()
                    await conn.close()
                sent[0] += 1
                if t0 < measure_from:
                    continue
                latencies.append(loop.time() - t0)
                if not 200 <= status < 300:
                    errors[summarize(status, body)] += 1
        finally:
            await conn.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(client(mine) for mine in requests))
    return LoadResult(latencies, errors, duration, time.process_time() - cpu0, sent[0])


# ------------------------------------------------------------------------------ server
@dataclass
class Variant:
    key: str
    label: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    phases: list[tuple[int, bool]] = field(default_factory=list)  # (clients, same ticket)
    cwd: Path = BASE_DIR  # the source tree the server runs (a baseline's worktree)


class Server(AppServer):
    def __init__(self, variant: Variant, db: Database, logdir: Path) -> None:
        self.variant = variant
        super().__init__(
            logdir / f"server-{variant.key}.log",
            {
                "DATABASE_URL": db.url,
                "DESKSTREAM_DEMO": "1",
                # Every client posts from 127.0.0.1 as fast as it can: the rate limits would
                # stop it within a second (they are measured by the tests, not here).
                "DESKSTREAM_RATE_LIMITS": "0",
                # Analytics (chDB) of this run's database, not of whatever `make run` left in
                # var/analytics: the servers of one run share it, as they share the database.
                "DESKSTREAM_ANALYTICS_PATH": str(logdir / "analytics"),
                **variant.env,
                **SERVER_ENV,
            },
            variant.args,
            cwd=variant.cwd,
            drop=lambda k: k in TUNING_VARS,
        )

    def error_lines(self) -> collections.Counter[str]:
        """Tracebacks in the server log, counted by their final exception (chains count once)."""
        return log_errors(self.logfile.read_text(errors="replace"))


# The last line of a traceback: an exception named *Error, *Exception or *Exit, or one of
# psycopg's, which are named after their SQLSTATE (psycopg.errors.NotNullViolation).
_EXCEPTION_LINE = re.compile(r"^([\w.]+(?:Error|Exception|Exit)\w*|psycopg\.errors\.\w+): (.*)$")


def log_errors(text: str) -> collections.Counter[str]:
    """Tracebacks in a server log's ``text``, counted by their final exception (a chain of
    exceptions counts once, as its last one)."""
    counts: collections.Counter[str] = collections.Counter()
    pending = ""
    for line in text.splitlines():
        if not line.strip() or line[0] in " \t" or line.startswith("Traceback"):
            continue
        m = _EXCEPTION_LINE.match(line)
        if m:
            message = m.group(2)
            if "FATAL:" in message:
                message = message[message.index("FATAL:") :]
            pending = f"{m.group(1).rsplit('.', 1)[-1]}: {' '.join(message.split())[:120]}"
        elif line.startswith(("The above exception", "During handling of the above")):
            continue  # a chained exception follows; count only the last one
        elif pending:
            counts[pending] += 1
            pending = ""
    if pending:
        counts[pending] += 1
    return counts


def login(client: httpx.Client, base: str, email: str) -> str:
    r = client.post(f"{base}/api/auth/demo-login", json={"email": email})
    r.raise_for_status()
    return str(r.json()["access"])


def open_ticket(client: httpx.Client, base: str, token: str, n: int) -> str:
    r = client.post(
        f"{base}/api/tickets",
        json={"subject": f"Benchmark ticket {n}", "description": "Load test ticket."},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return str(r.json()["id"])


@dataclass
class PhaseRow:
    variant: str
    clients: int
    same_ticket: bool
    tickets: int
    count: int
    seconds: float
    p50: float
    p99: float
    errors: collections.Counter[str]
    events: int
    transactions: int
    sessions: int
    requests_total: int
    peak_connections: int
    cpu_server: float  # the launcher's whole process tree (web server and projectors)
    cpu_pg: float
    cpu_client: float
    cpu_machine: float
    cpu_projectors: float = 0.0  # of cpu_server: the projector process (`projector run-all`)
    latencies: list[float] = field(default_factory=list)  # seconds, sorted
    rates: list[float] = field(default_factory=list)  # one per run, when runs were pooled

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def sessions_per_command(self) -> float:
        """New database connections per request sent (warm-up included on both sides)."""
        return ratio(self.sessions, self.requests_total)

    @property
    def cpu_ms_per_command(self) -> float:
        return 1000 * self.cpu_ours / self.rate if self.rate else float("nan")

    @property
    def cpu_ours(self) -> float:
        return self.cpu_server + self.cpu_pg + self.cpu_client

    @property
    def cpu_other(self) -> float:
        """CPU used by processes that are not part of the benchmark (a shared machine)."""
        return max(0.0, self.cpu_machine - self.cpu_ours)


@dataclass
class VariantResult:
    variant: Variant
    idle: Memory | None = None
    after: Memory | None = None
    rows: list[PhaseRow] = field(default_factory=list)
    log_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    phase_failures: list[str] = field(default_factory=list)
    failure: str = ""


def pool_rows(rows: list[PhaseRow]) -> PhaseRow:
    """One row from the same phase run several times: counts add up, latency percentiles are
    over all requests, CPU is averaged, and the per-run rates are kept to show the spread."""
    lat = sorted(x for r in rows for x in r.latencies)
    errors: collections.Counter[str] = collections.Counter()
    for r in rows:
        errors.update(r.errors)
    n = len(rows)
    return PhaseRow(
        variant=rows[0].variant,
        clients=rows[0].clients,
        same_ticket=rows[0].same_ticket,
        tickets=rows[0].tickets,
        count=sum(r.count for r in rows),
        seconds=sum(r.seconds for r in rows),
        p50=percentile(lat, 50) * 1000,
        p99=percentile(lat, 99) * 1000,
        errors=errors,
        events=sum(r.events for r in rows),
        transactions=sum(r.transactions for r in rows),
        sessions=sum(r.sessions for r in rows),
        requests_total=sum(r.requests_total for r in rows),
        peak_connections=max(r.peak_connections for r in rows),
        cpu_server=sum(r.cpu_server for r in rows) / n,
        cpu_pg=sum(r.cpu_pg for r in rows) / n,
        cpu_client=sum(r.cpu_client for r in rows) / n,
        cpu_projectors=sum(r.cpu_projectors for r in rows) / n,
        cpu_machine=sum(r.cpu_machine for r in rows) / n,
        latencies=lat,
        rates=[r.rate for r in rows],
    )


def pool_results(runs: list[VariantResult]) -> VariantResult:
    """Merge the repeated runs of one variant (memory: the first run that measured it)."""
    merged = VariantResult(runs[0].variant)
    merged.idle = next((r.idle for r in runs if r.idle is not None), None)
    merged.after = next((r.after for r in runs if r.after is not None), None)
    for clients, same in runs[0].variant.phases:
        rows = [
            row
            for r in runs
            for row in r.rows
            if row.clients == clients and row.same_ticket == same
        ]
        if rows:
            merged.rows.append(pool_rows(rows))
    for r in runs:
        merged.log_errors.update(r.log_errors)
        merged.phase_failures.extend(r.phase_failures)
    merged.failure = "; ".join(r.failure for r in runs if r.failure)
    return merged


@dataclass
class Quiet:
    """On a shared machine, wait for other processes to go quiet before each phase."""

    max_wait: float = 180.0
    retries: int = 1  # reruns of a phase during which other processes were busy


QUIET = Quiet()


def other_cpu(server: Server, db: Database, seconds: float) -> float:
    """Cores used over ``seconds`` by processes that are not part of the benchmark."""

    def ours() -> float:
        procs = tree(server.pid) + (tree(db.postmaster_pid) if db.postmaster_pid else [])
        return cpu_seconds(procs) + time.process_time()

    ours0, busy0, t0 = ours(), machine_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    ours1, busy1, t1 = ours(), machine_busy_seconds(), time.perf_counter()
    return max(0.0, ((busy1 - busy0) - (ours1 - ours0)) / (t1 - t0))


def wait_quiet(server: Server, db: Database) -> None:
    other = other_cpu(server, db, 2.0)
    if other <= NOISY_CPU or QUIET.max_wait <= 0:
        return
    log(f"  other processes use {other:.2f} cores: waiting up to {QUIET.max_wait:.0f}s")
    deadline = time.monotonic() + QUIET.max_wait
    while time.monotonic() < deadline:
        other = other_cpu(server, db, 4.0)
        if other <= NOISY_CPU:
            log("  quiet again")
            return
    log(f"  still {other:.2f} cores busy elsewhere: measuring anyway")


def run_variant(
    variant: Variant, db: Database, logdir: Path, duration: float, warmup: float, idle: float
) -> VariantResult:
    result = VariantResult(variant)
    log(f"server '{variant.label}': starting")
    server = Server(variant, db, logdir)
    try:
        server.wait_ready(ok=5)
        wait_for_projectors(db)
        log(f"server '{variant.label}': ready on port {server.port}, idling {idle:.0f}s")
        time.sleep(idle)
        result.idle = memory_of(server.pid, db.postmaster_pid)
        log(f"  idle memory: {mb(result.idle.rss)} RSS, {mb(result.idle.pss)} PSS")
        max_clients = max(c for c, _ in variant.phases)
        with httpx.Client(timeout=30.0) as http:
            tokens = [
                login(http, server.base, f"bench.client{i}@bench.test") for i in range(max_clients)
            ]
            for n, (clients, same) in enumerate(variant.phases):
                try:
                    attempts: list[PhaseRow] = []
                    for attempt in range(1 + QUIET.retries):
                        wait_quiet(server, db)
                        attempts.append(
                            run_phase(server, db, http, tokens, clients, same, n, duration, warmup)
                        )
                        if attempts[-1].cpu_other <= NOISY_CPU:
                            break
                        if attempt < QUIET.retries:
                            log("    other processes were busy during the phase: once more")
                    result.rows.append(min(attempts, key=lambda row: row.cpu_other))
                except httpx.HTTPError as exc:
                    # Setting the phase up (sign-in, tickets) failed: report it, go on.
                    if isinstance(exc, httpx.HTTPStatusError):
                        why = summarize(exc.response.status_code, exc.response.content)
                    else:
                        why = f"{type(exc).__name__}: {exc}"
                    what = f"{clients} client(s){' on one ticket' if same else ''}"
                    result.phase_failures.append(f"{what}: setup failed ({why})")
                    log(f"  {what}: setup failed ({why})")
        time.sleep(min(idle, 3.0))
        result.after = memory_of(server.pid, db.postmaster_pid)
    except Exception as exc:  # a failed variant is reported; the run goes on
        result.failure = f"{type(exc).__name__}: {exc}"
        log(f"server '{variant.label}' failed: {result.failure}")
    finally:
        server.stop()
        result.log_errors = server.error_lines()
        wait_for_backends_to_exit(db)
    return result


def wait_for_projectors(db: Database, timeout: float = 180.0) -> None:
    """Let in-process projectors catch up with the log before measuring: a variant without
    them leaves a backlog that the next server would otherwise project during its phases."""
    if not db.query("SELECT to_regclass('projection_position') IS NOT NULL")[0][0]:
        return
    # The analytics projector keeps its position with its tables in chDB (ADR 0035): its
    # row here only records where it is fed from (infra/postgres/feed.py) and stays at 0.
    sql = (
        "SELECT (SELECT coalesce(max(notification_id), 0) FROM deskstream_events), "
        "(SELECT min(position) FROM projection_position WHERE name <> 'analytics')"
    )
    deadline = time.monotonic() + timeout
    head, low = db.query(sql)[0]
    if low is None or low >= head:
        return
    log(f"  projectors are {head - low} events behind: letting them catch up")
    last, since = low, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        head, low = db.query(sql)[0]
        if low is None or low >= head:
            return
        if low != last:
            last, since = low, time.monotonic()
        elif time.monotonic() - since > 5:
            return  # not moving: the rest of the log holds nothing for the slowest projector


def wait_for_setup(db: Database, timeout: float = 60.0) -> None:
    """Before a phase's load: its fresh tickets projected and the e-mails they caused sent
    (each is assigned, and its agent e-mailed, by the projector process: a claim, a
    hand-over and a commit per e-mail). That work belongs to opening the tickets, not to
    the message commands measured; left to the measured window it cost the projector
    process 0.5-1 s of CPU in each phase (helper measurement, 2026-12-06)."""
    wait_for_projectors(db, timeout)
    wait_for_outbox(db, timeout)


def wait_for_outbox(db: Database, timeout: float = 60.0) -> None:
    """Until no e-mail of the outbox waits to be sent, or the count stops moving for 5 s."""
    if not db.query("SELECT to_regclass('notification_outbox') IS NOT NULL")[0][0]:
        return
    sql = "SELECT count(*) FROM notification_outbox WHERE status IN ('pending', 'claimed')"
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        left = int(db.query(sql)[0][0])
        if left == 0:
            return
        if left != last:
            last, since = left, time.monotonic()
        elif time.monotonic() - since > 5:
            return  # not moving: waiting for a retry, or nobody sends them
        time.sleep(0.2)


def wait_for_backends_to_exit(db: Database, timeout: float = 15.0) -> None:
    """Let the stopped server's PostgreSQL backends go, so the next server's memory is its own."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(psycopg.Error):
        while time.monotonic() < deadline:
            rows = db.query(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if int(rows[0][0]) == 0:
                return
            time.sleep(0.2)


def run_phase(
    server: Server,
    db: Database,
    http: httpx.Client,
    tokens: list[str],
    clients: int,
    same: bool,
    n: int,
    duration: float,
    warmup: float,
) -> PhaseRow:
    # Fresh tickets for every phase, so the ticket length (and the per-command cost of
    # loading a ticket) is comparable between phases: clients own disjoint tickets.
    if same:
        # One customer's ticket, posted to by `clients` separate sessions of that customer.
        owner = "bench.same@bench.test"
        toks = [login(http, server.base, owner) for _ in range(clients)]
        tid = open_ticket(http, server.base, toks[0], n)
        plan = [[(toks[i], tid)] for i in range(clients)]
        tickets = 1
    else:
        per_client = max(1, TICKET_POOL // clients)
        plan = [
            [(tokens[i], open_ticket(http, server.base, tokens[i], n)) for _ in range(per_client)]
            for i in range(clients)
        ]
        tickets = per_client * clients
    requests = [
        [
            post_bytes(
                server.port, f"/api/tickets/{tid}/messages", tok, {"body": "Any news on this?"}
            )
            for tok, tid in mine
        ]
        for mine in plan
    ]
    label = f"{clients} client{'s' if clients > 1 else ''}" + (" on one ticket" if same else "")
    wait_for_setup(db)
    log(f"  {label}: {tickets} ticket(s), {warmup:.0f}s warm-up + {duration:.0f}s")

    before = db_counters(db)
    sampler = ConnectionSampler(db)
    server_procs = tree(server.pid)
    pg_procs = tree(db.postmaster_pid) if db.postmaster_pid else []
    cpu_s0, cpu_pg0, busy0 = (
        cpu_seconds(server_procs),
        cpu_seconds(pg_procs),
        machine_busy_seconds(),
    )
    proj_procs = projector_processes(server_procs)
    cpu_proj0 = cpu_seconds(proj_procs)
    # CPU is sampled around the whole closed loop, warm-up included; scale by time below.
    t0 = time.perf_counter()
    try:
        load = asyncio.run(closed_loop(server.port, requests, duration, warmup))
    finally:
        peak = sampler.stop()
    elapsed = time.perf_counter() - t0
    server_procs = tree(server.pid)
    pg_procs = tree(db.postmaster_pid) if db.postmaster_pid else []
    cpu_s1, cpu_pg1, busy1 = (
        cpu_seconds(server_procs),
        cpu_seconds(pg_procs),
        machine_busy_seconds(),
    )
    cpu_proj1 = cpu_seconds(proj_procs)
    time.sleep(0.5)  # let in-flight commits land before counting events
    after = db_counters(db)
    events, transactions = events_and_transactions(db, before["last"])

    lat = sorted(load.latencies)
    row = PhaseRow(
        variant=server.variant.key,
        clients=clients,
        same_ticket=same,
        tickets=tickets,
        count=len(lat),
        seconds=load.seconds,
        p50=percentile(lat, 50) * 1000,
        p99=percentile(lat, 99) * 1000,
        errors=load.errors,
        events=events,
        transactions=transactions,
        sessions=after["sessions"] - before["sessions"],
        requests_total=load.total_requests,
        peak_connections=peak,
        cpu_server=(cpu_s1 - cpu_s0) / elapsed,
        cpu_pg=(cpu_pg1 - cpu_pg0) / elapsed,
        cpu_client=load.client_cpu / elapsed,
        cpu_machine=(busy1 - busy0) / elapsed,
        cpu_projectors=(cpu_proj1 - cpu_proj0) / elapsed,
        latencies=lat,
    )
    log(
        f"    {row.rate:7.0f} commands/s  p50 {row.p50:6.1f} ms  p99 {row.p99:7.1f} ms  "
        f"errors {row.error_count}  events/commit {ratio(events, transactions):.1f}  "
        f"new PG sessions {row.sessions} (peak open {peak})  CPU server {row.cpu_server:.2f} "
        f"pg {row.cpu_pg:.2f} client {row.cpu_client:.2f} other {row.cpu_other:.2f}"
    )
    for err, count in load.errors.most_common(3):
        log(f"      {count} x {err}")
    return row


def per_command(row: PhaseRow) -> str:
    """CPU milliseconds per command of the web server process(es), the projector process and
    PostgreSQL: less sensitive to other load on a shared machine than commands/s."""
    if not row.rate:
        return ""
    web = row.cpu_server - row.cpu_projectors
    return " / ".join(
        f"{1000 * cores / row.rate:.2f}" for cores in (web, row.cpu_projectors, row.cpu_pg)
    )


def clients_label(n: int) -> str:
    return f"{n} client" if n == 1 else f"{n} clients"


def phase_label(row: PhaseRow) -> str:
    return clients_label(row.clients) + (" on one ticket" if row.same_ticket else "")


def summarize(status: int, body: bytes) -> str:
    """``status`` and the gist of an error body (JSON error code, or an HTML page's title)."""
    text = body.decode(errors="replace")
    title = re.search(r"<title>(.*?)</title>", text, re.S)
    if title:
        text = title.group(1)
    else:
        with contextlib.suppress(ValueError, AttributeError):
            data = json.loads(text)
            text = str(data.get("error") or data.get("detail") or data)
    return f"{status} {' '.join(text.split())[:100]}".strip()


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


# ------------------------------------------------------------------------------ report
def row_for(
    results_: list[VariantResult], key: str, clients: int, same: bool = False
) -> PhaseRow | None:
    for r in results_:
        if r.variant.key == key:
            for row in r.rows:
                if row.clients == clients and row.same_ticket == same:
                    return row
    return None


def build_results(
    db: Database,
    args: argparse.Namespace,
    background_cpu: float,
    ceiling: list[CeilingRow],
    results_: list[VariantResult],
    baseline: str,
) -> dict[str, Any]:
    """The results document: the run and its tables (no interpretation)."""
    import uvicorn

    def rate_range(row: PhaseRow) -> str:
        return f"{min(row.rates):,.0f}-{max(row.rates):,.0f}" if len(row.rates) > 1 else ""

    # Targets
    targets: list[list[Any]] = []
    d32 = row_for(results_, "default", 32)
    if d32 is not None:
        targets.append(
            [
                f"≥ {TARGET_RATE:,.0f} commands/s at 32 clients, all 2xx",
                f"{d32.rate:,.0f} commands/s, {d32.error_count} errors",
                d32.rate >= TARGET_RATE and d32.error_count == 0,
            ]
        )
        targets.append(
            [
                f"p99 < {TARGET_P99_MS:.0f} ms at 32 clients",
                f"{d32.p99:,.1f} ms",
                d32.p99 < TARGET_P99_MS,
            ]
        )
    idle = next((r.idle for r in results_ if r.variant.key == "default" and r.idle), None)
    if idle is not None:
        targets.append(
            [
                "idle memory of everything `make run` starts < 1 GB",
                f"{mb(idle.rss)} RSS ({mb(idle.pss)} PSS)",
                idle.rss < TARGET_MEMORY,
            ]
        )

    # Commands over HTTP
    http_rows: list[list[Any]] = []
    for r in results_:
        if r.failure and not r.rows:
            http_rows.append([r.variant.label, f"failed: {r.failure[:120]}", *[None] * 12])
        for row in r.rows:
            http_rows.append(
                [
                    r.variant.label,
                    f"{row.clients}" + (" (one ticket)" if row.same_ticket else ""),
                    row.tickets,
                    row.rate,
                    rate_range(row),
                    row.p50,
                    row.p99,
                    row.error_count,
                    ratio(row.events, row.transactions),
                    row.sessions_per_command,
                    row.peak_connections,
                    row.cpu_ms_per_command,
                    per_command(row),
                    f"{row.cpu_server - row.cpu_projectors:.2f} / {row.cpu_projectors:.2f} / "
                    f"{row.cpu_pg:.2f} / {row.cpu_client:.2f} / {row.cpu_other:.2f}",
                ]
            )
        for failed in r.phase_failures:
            http_rows.append([r.variant.label, failed, *[None] * 12])

    # Ratios: (comparison, clients, A, B, A / B)
    ratios: list[list[Any]] = []
    single = next((c for c in ceiling if c.threads == 1 and c.label.startswith("app.save(1")), None)
    if single is not None:
        for n in (1, 8, 32):
            d = row_for(results_, "default", n)
            if d is not None:
                what = "default server / single-event-commit ceiling (1 thread)"
                ratios.append([what, clients_label(n), d.rate, single.events_per_s])
    pairs = (
        ("nolane", "message lane on / off", "default", "nolane"),
        ("nogc", "group commit on / off", "default", "nogc"),
        ("workers2", "2 uvicorn workers / 1", "workers2", "default"),
        ("threads", "projector process / projectors in threads", "default", "threads"),
    )
    for _, what, a_key, b_key in pairs:
        for n, same in ((1, False), (8, False), (8, True), (32, False)):
            a, b = row_for(results_, a_key, n, same), row_for(results_, b_key, n, same)
            if a is not None and b is not None:
                label = clients_label(n) + (" on one ticket" if same else "")
                ratios.append([what, label, a.rate, b.rate])
    for cells in ratios:
        cells.append(ratio(cells[2], cells[3]))

    # The baseline side by side: rates per run, p99s
    side: list[list[Any]] = []
    for n, same in ((1, False), (8, False), (8, True), (32, False)):
        a, b = row_for(results_, "default", n, same), row_for(results_, "baseline", n, same)
        if a is not None and b is not None:
            side.append(
                [
                    clients_label(n) + (" on one ticket" if same else ""),
                    a.rate,
                    rate_range(a),
                    b.rate,
                    rate_range(b),
                    ratio(a.rate, b.rate),
                    a.p99,
                    b.p99,
                    a.error_count,
                    b.error_count,
                ]
            )

    memory_rows = [
        [
            r.variant.label,
            when,
            m.server_procs,
            m.server_rss / 2**20,
            m.pg_procs,
            m.pg_rss / 2**20,
            m.rss / 2**20,
            m.pss / 2**20,
        ]
        for r in results_
        for when, m in (("idle, before load", r.idle), ("idle, after load", r.after))
        if m is not None
    ]
    errors: list[list[Any]] = []
    for r in results_:
        for row in r.rows:
            for e, n in row.errors.most_common(2):
                errors.append([r.variant.label, phase_label(row), n, f"`{e[:100]}`"])
        for e, n in r.log_errors.most_common(3):
            errors.append([r.variant.label, "server log", n, f"`{e[:150]}`"])

    s = db.settings
    pg = f"{db.version} ({db.kind}" + (
        f", as `make run` starts it, data in `{BENCH_PG.relative_to(BASE_DIR)}`)"
        if db.embedded is not None
        else ")"
    )
    setup: dict[str, Any] = {
        "PostgreSQL": pg,
        "PostgreSQL settings": ", ".join(f"{k}={v}" for k, v in s.items()),
        "uvicorn": uvicorn.__version__,
        "Load": f"closed loop, {args.warmup:.0f} s warm-up + {args.duration:.0f} s per phase, "
        f"{TICKET_POOL} fresh tickets per phase; {args.repeat} interleaved run(s) per variant, "
        "pooled",
        "Other processes before the run": f"{background_cpu:.2f} cores",
    }
    if SERVER_ENV:
        setup["Every server also ran with"] = ", ".join(f"`{k}={v}`" for k, v in SERVER_ENV.items())
    if baseline:
        setup["Baseline"] = baseline
    rate, ms = ",.0f", ",.1f"
    return results(
        BENCH,
        " ".join([".venv/bin/python bench/commands.py", *(args.argv or [])]),
        machine(),
        setup,
        [
            table(
                "Against the targets",
                [column("Target"), column("Measured (default server)"), column("Met?")],
                targets,
            ),
            table(
                "Against the baseline (default server, same run, interleaved)",
                [
                    column("Clients"),
                    column("This tree commands/s", rate),
                    column("Per-run range", align="right"),
                    column("Baseline commands/s", rate),
                    column("Baseline per-run range", align="right"),
                    column("This / baseline", "{:.2f}x"),
                    column("p99 ms", ms),
                    column("Baseline p99 ms", ms),
                    column("Errors", "d"),
                    column("Baseline errors", "d"),
                ],
                side,
            ),
            table(
                "Ceiling: raw appends to the same database (no HTTP, no Django)",
                [
                    column("Append"),
                    column("Threads", "d"),
                    column("Events/commit", "d"),
                    column("Events/s", rate),
                    column("Commits/s", rate),
                ],
                [
                    [
                        f"`{c.label}`",
                        c.threads,
                        c.events_per_commit,
                        c.events_per_s,
                        c.commits_per_s,
                    ]
                    for c in ceiling
                ],
            ),
            table(
                "Commands over HTTP",
                [
                    column("Server"),
                    column("Clients", align="right"),
                    column("Tickets", "d"),
                    column("Commands/s", rate),
                    column("Per-run range", align="right"),
                    column("p50 ms", ms),
                    column("p99 ms", ms),
                    column("Errors", "d"),
                    column("Events/commit", ".1f"),
                    column("PG sessions/cmd", ".2f"),
                    column("Peak conns", "d"),
                    column("CPU ms/cmd", ".1f"),
                    column("CPU ms/cmd web / projectors / pg"),
                    column("CPU web / projectors / pg / client / other"),
                ],
                http_rows,
            ),
            table(
                "Ratios",
                [
                    column("Comparison"),
                    column("Clients"),
                    column("A", rate),
                    column("B", rate),
                    column("A / B", "{:.2f}x"),
                ],
                ratios,
            ),
            table(
                "Memory",
                [
                    column("Server"),
                    column("When"),
                    column("Server procs", "d"),
                    column("Server RSS MB", rate),
                    column("PostgreSQL procs", "d"),
                    column("PostgreSQL RSS MB", rate),
                    column("Total RSS MB", rate),
                    column("Total PSS MB", rate),
                ],
                memory_rows,
            ),
            table(
                "Errors",
                [column("Server"), column("Where"), column("Count", "d"), column("Error")],
                errors,
            ),
        ],
    )


# ------------------------------------------------------------------------------ main
def variants(quick: bool, baseline: Path | None, rev: str) -> list[Variant]:
    spread = [(1, False), (8, False), (32, False)]
    # The one-ticket phase goes before 32 clients: a server that has run out of database
    # connections at 32 clients could not even open its ticket afterwards.
    with_same = [(1, False), (8, False), (8, True), (32, False)]
    chosen = [Variant("default", "default (`make run`)", phases=with_same)]
    if baseline is not None:
        label = f"default at {rev} (baseline)"
        chosen.append(Variant("baseline", label, phases=with_same, cwd=baseline))
    if quick:
        return chosen
    return [
        *chosen,
        Variant(
            "nolane",
            "message lane off",
            env={"DESKSTREAM_MESSAGE_LANE": "0"},
            phases=with_same,
        ),
        Variant("nogc", "group commit off", env={"DESKSTREAM_GROUP_COMMIT": "0"}, phases=with_same),
        Variant("workers2", "2 uvicorn workers", args=["--workers", "2"], phases=spread),
        Variant(
            "threads", "projectors in threads", args=["--projectors", "threads"], phases=spread
        ),
    ]


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[tuple[Path, str]]:
    """Git revision ``rev`` checked out in a temporary worktree (``git worktree add
    --detach``), removed afterwards: (its directory, ``rev`` and its short commit id).

    Its server runs with this tree's virtualenv, from that directory. The built web app is
    copied in (and marked current) so its launcher does not rebuild it with npm."""
    commit = git("rev-parse", "--short", f"{rev}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="deskstream-baseline-"))
    path = parent / "tree"
    log(f"baseline: checking out {rev} ({commit}) in {path}")
    git("worktree", "add", "--detach", str(path), commit)
    try:
        dist = BASE_DIR / "web" / "dist"
        if (dist / "index.html").is_file():
            shutil.copytree(dist, path / "web" / "dist", dirs_exist_ok=True)
            os.utime(path / "web" / "dist" / "index.html")
        yield path, f"`{rev}` = {commit}"
    finally:
        try:
            git("worktree", "remove", "--force", str(path))
        except (OSError, subprocess.SubprocessError):
            shutil.rmtree(path, ignore_errors=True)
            git("worktree", "prune")  # drops only entries whose directory is gone: this one
        shutil.rmtree(parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of every variant, interleaved and pooled"
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=QUIET.max_wait,
        help="seconds to wait before a phase for other processes to go quiet (0: never)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=QUIET.retries,
        help="reruns of a phase during which other processes were busy",
    )
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before memory")
    parser.add_argument("--db-url", help="use this PostgreSQL database instead of the embedded one")
    parser.add_argument("--ceiling-events", type=int, default=2000)
    parser.add_argument(
        "--only",
        help="comma-separated variant keys: default,baseline,nolane,nogc,workers2,threads",
    )
    parser.add_argument("--quick", action="store_true", help="the default server only")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the default server of git revision REV (checked out in a temporary "
        "worktree), interleaved with this tree's, and report the ratio",
    )
    parser.add_argument(
        "--clients",
        help="comma-separated client counts to run (e.g. 1,32; 'same' adds 8 on one ticket); "
        "default: every phase of each variant",
    )
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help="print the section; do not write bench/results/commands.json or the doc",
    )
    parser.add_argument("--keep-pg", action="store_true", help="keep var/bench-pg afterwards")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every server started (for experiments)",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    QUIET.max_wait, QUIET.retries = args.max_wait, args.retries
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--server-env wants KEY=VALUE, not {item!r}")
        SERVER_ENV[key] = value

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    with contextlib.ExitStack() as stack:
        baseline_dir, baseline = None, ""
        if args.baseline:
            baseline_dir, baseline = stack.enter_context(baseline_tree(args.baseline))
        return run(args, baseline_dir, baseline)
    raise AssertionError("unreachable")


def run(args: argparse.Namespace, baseline_dir: Path | None, baseline: str) -> int:
    background_cpu = background_cores(1.0)
    chosen = variants(args.quick, baseline_dir, args.baseline or "")
    if args.clients:
        wanted = set(args.clients.split(","))
        for v in chosen:
            v.phases = [
                (c, same)
                for c, same in v.phases
                if ("same" in wanted if same else str(c) in wanted)
            ]
    if args.only:
        keys = set(args.only.split(","))
        chosen = [v for v in chosen if v.key in keys]

    db: Database | None = None
    own: dict[str, Database] = {}  # variants that do not run on ``db``
    results_: list[VariantResult] = []
    logdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-"))
    try:
        db = start_database(
            "deskstream", db_url=args.db_url, pg_dir=BENCH_PG, embedded_first=True, show=PG_SETTINGS
        )
        log(f"PostgreSQL {db.version} at {db.url}")
        # Another revision's server gets a database of its own, migrated by its own code.
        for variant in chosen:
            if variant.cwd != BASE_DIR:
                own[variant.key] = sibling_database(db, variant.key)
                log(f"  {variant.key}: database {own[variant.key].name} of its own")
        runs: dict[str, list[VariantResult]] = {v.key: [] for v in chosen}
        for n in range(args.repeat):
            # Interleaved (every variant, then every variant again) so a slow patch on a
            # shared machine does not land on a single variant.
            for variant in chosen:
                log(f"run {n + 1} of {args.repeat}")
                runs[variant.key].append(
                    run_variant(
                        variant,
                        own.get(variant.key, db),
                        logdir,
                        args.duration,
                        args.warmup,
                        args.idle,
                    )
                )
        results_ = [pool_results(runs[v.key]) for v in chosen]
        for a, b in (("default", "baseline"),):
            for n, same in ((1, False), (8, False), (8, True), (32, False)):
                x, y = row_for(results_, a, n, same), row_for(results_, b, n, same)
                if x is not None and y is not None:
                    log(
                        f"this tree / baseline, {clients_label(n)}{' on one ticket' * same}: "
                        f"{x.rate:,.0f} / {y.rate:,.0f} = {ratio(x.rate, y.rate):.2f}x "
                        f"(p99 {x.p99:.1f} vs {y.p99:.1f} ms)"
                    )
        # The ceiling runs last, with no server up: its thousands of new tickets would
        # otherwise keep the servers' in-process projectors busy catching up.
        ceiling: list[CeilingRow] = []
        if args.ceiling_events:
            log(f"ceiling: {args.ceiling_events} raw appends per mode, no server running")
            ceiling = measure_ceiling(db, args.ceiling_events, threads=8)
        for c in ceiling:
            log(
                f"  {c.label:36s} threads={c.threads} events/commit={c.events_per_commit:3d}: "
                f"{c.events_per_s:8.0f} events/s {c.commits_per_s:8.0f} commits/s"
            )
        doc = build_results(db, args, background_cpu, ceiling, results_, baseline)
        publish(doc, write=not args.no_doc)
    finally:
        for other in own.values():
            stop_database(other, keep=args.keep_pg)
        if db is not None:
            stop_database(db, keep=args.keep_pg)
        log(f"server logs kept in {logdir}")
    failed = [r for r in results_ if r.failure]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
