"""WebSocket push latency and fan-out cost: from a command's HTTP response to its frame at
every subscriber, over one or several server processes.

Run it as ``.venv/bin/python bench/realtime.py`` (every row of docs/benchmarks.md, several
minutes; ``--runs`` picks rows, ``--baseline DIR`` adds the rows of an earlier source tree).

Two scenarios (``--runs scenario:variant,...``):

- ``tickets``: ``--sockets`` (1,000) WebSockets on ``--tickets`` (200) tickets, 5 per ticket
  (its customer and agents), and ``POST /api/tickets/{id}/messages`` open-loop at ``--rate``
  (500) commands/s, round robin over the tickets; target frame p99 < 100 ms.
- ``queue``: ``--queue-sockets`` (200) agent sockets on the queue stream, and
  ``POST /api/tickets/{id}/status`` (open and resolved in turn) at ``--queue-rate`` (200)
  commands/s over ``--queue-tickets`` tickets: every command reaches every socket; target
  frame p99 < 250 ms.

Variants: ``memory`` (the in-memory layer, as ``make run``), ``redis`` (one process),
``redis-2w-leader`` and ``redis-2w-local`` (``--workers 2``, ``DESKSTREAM_PUSH_FANOUT``
leader or local, ADR 0044); with ``--baseline`` also ``before-2w`` (that tree's code, two
workers).

For each row it uses the PostgreSQL of ``--db-url``, else a fresh database on the server of
``DATABASE_URL`` (or 127.0.0.1:5432), else an embedded one (``benchlib.start_database``);
starts ``python -m infra.server.launcher`` (demo mode, with its projector process) on a free
port; opens the sockets in ``--client-procs`` (4) processes of their own (``multiprocessing``,
so the client is not one interpreter competing with the server for a core), sends the
commands from this process over 16 keep-alive connections for ``--duration`` seconds after
a warm-up, and records, for every command and every socket that should get its frame, the
time from reading the HTTP response to receiving the frame (0 if the frame came first);
missing and duplicate frames are counted per socket. CPU is measured for the server's
process tree and for the client processes (this one and the socket processes); "other" is
the rest of the machine's busy time (other users of a shared machine). With Redis, the
server's fan-out counters (``<prefix>push:stats:*``) give group messages published and
frames delivered per event. Writes ``bench/results/realtime.json`` and renders its section
of ``docs/benchmarks.md`` (``benchlib.publish``); stops everything it started, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench.benchlib import (
    BASE_DIR,
    AppServer,
    Database,
    RawHTTP,
    Redis,
    background_cores,
    column,
    cpu_seconds,
    log,
    machine,
    machine_busy_seconds,
    percentile,
    post_bytes,
    publish,
    results,
    start_database,
    stop_database,
    table,
    tree,
)
from infra.realtime.stats import read_fanout

BENCH = "realtime"
PG_DIR = BASE_DIR / "var" / "bench-rt-pg"
LOG_DIR = BASE_DIR / "var" / "bench-rt"
DB_NAME = "deskstream_bench_rt"
HTTP_CONNECTIONS = 16
MAX_BACKLOG = 8 * HTTP_CONNECTIONS  # commands waiting for a connection before sending stops
DRAIN_QUIET = 5.0  # after the load, seconds without a new frame before a socket stops waiting
DRAIN_MAX = 60.0  # and at most this long
TARGET_P99_MS = 100.0  # the tickets scenario
QUEUE_P99_MS = 250.0  # the queue scenario
AGENT = "agent.ada@deskstream.test"


def start_server(
    name: str, db: Database, env: dict[str, str], args: tuple[str, ...], cwd: Path = BASE_DIR
) -> AppServer:
    server = AppServer(
        LOG_DIR / f"server-{name}.log",
        {"DATABASE_URL": db.url, "DESKSTREAM_DEMO": "1", "DESKSTREAM_RATE_LIMITS": "0", **env},
        args,
        cwd=cwd,
        drop=lambda k: k.startswith(("DESKSTREAM_", "DATABASE_")),
    )
    try:
        server.wait_ready("/api/schema/")
    except Exception:
        server.stop()
        raise
    return server


# ------------------------------------------------------------------------------ sockets
def socket_worker(
    conn: Connection, ws_base: str, specs: list[tuple[str, dict[str, Any]]], batch: bool = True
) -> None:
    """A process of client sockets (``multiprocessing``): open and subscribe ``specs``
    (token, subscribe frame), say ``ready``, record every event frame's arrival, and once the
    parent sends the commands each socket should have seen, wait for those frames (while
    they keep coming) and score them. ``batch``: the sockets take frames joined into JSON
    arrays (``?batch=1``, ADR 0057), as the web app does.

    The process runs without the cyclic garbage collector: a client process holds an
    arrival record per frame and socket, and a full collection of its heap stalled every
    socket it reads at once (59-274 ms, measured in each of the 4 processes at the same
    point of a queue row, ~9 s in), which the row then reported as the server's frame
    latency (its p99). The arrival records are kept as untracked values (a dict of floats,
    a count of copies) and the process lives one row."""
    gc.disable()
    asyncio.run(_socket_worker(conn, ws_base, specs, batch))


async def _socket_worker(
    conn: Connection, ws_base: str, specs: list[tuple[str, dict[str, Any]]], batch: bool
) -> None:
    loop = asyncio.get_running_loop()
    received: list[dict[int, float]] = [{} for _ in specs]  # position: first arrival
    copies: list[dict[int, int]] = [{} for _ in specs]  # position: arrivals after the first
    counts = [0, 0]  # messages with event frames, event frames
    gate = asyncio.Semaphore(16)

    async def open_one(token: str, spec: dict[str, Any]) -> ClientConnection:
        async with gate:
            query = f"token={token}" + ("&batch=1" if batch else "")
            ws = await connect(f"{ws_base}/ws/?{query}", proxy=None, max_queue=None)
            await ws.recv()  # ready
            await ws.send(json.dumps({"type": "subscribe", **spec}))
            while not any(f["type"] == "subscribed" for f in frames_of(await ws.recv())):
                pass
            return ws

    conns = await asyncio.gather(*(open_one(t, s) for t, s in specs))

    closed = [False] * len(specs)  # the server closed the socket before the end

    async def reader(j: int, ws: ClientConnection) -> None:
        seen, again = received[j], copies[j]
        with contextlib.suppress(Exception):
            async for raw in ws:
                now = time.monotonic()
                events = 0
                for frame in frames_of(raw):
                    if frame.get("type") == "event":
                        position = frame["position"]
                        if position in seen:
                            again[position] = again.get(position, 0) + 1
                        else:
                            seen[position] = now
                        events += 1
                if events:
                    counts[0] += 1
                    counts[1] += events
        closed[j] = True

    readers = [asyncio.create_task(reader(j, ws)) for j, ws in enumerate(conns)]
    conn.send(("ready", len(conns)))
    # The commands each socket should have seen: (position, request start, response read),
    # sent once the load is over. Frames still on their way are waited for, as long as more
    # keep coming (a starved server may be seconds behind): missing means never came.
    expected: dict[str, list[tuple[int, float, float]]] = await loop.run_in_executor(
        None, conn.recv
    )
    wanted = [{p for p, _, _ in expected.get(stream_key(spec), [])} for _, spec in specs]

    def arrived() -> int:
        return sum(len(w.intersection(received[j])) for j, w in enumerate(wanted))

    total, got, last_change = sum(map(len, wanted)), arrived(), time.monotonic()
    deadline = time.monotonic() + DRAIN_MAX
    while got < total and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = arrived()
        if now > got:
            got, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > DRAIN_QUIET:
            break
    await asyncio.sleep(0.5)  # a duplicate right behind the last frame still counts
    score = Score(closed=sum(closed), messages=counts[0], event_frames=counts[1])
    for ws in conns:
        with contextlib.suppress(Exception):
            await ws.close()
    for task in readers:
        task.cancel()
    for j, (_, spec) in enumerate(specs):
        seen, again = received[j], copies[j]
        for position, start, done in expected.get(stream_key(spec), []):
            score.expected += 1
            first = seen.get(position)
            if first is None:
                score.missing += 1
                continue
            score.duplicates += again.get(position, 0)
            score.frame_ms.append(max(first - done, 0.0) * 1000)
            score.end_to_end_ms.append((first - start) * 1000)
    conn.send(score)
    conn.close()


def frames_of(raw: str | bytes) -> list[dict[str, Any]]:
    """The frames of one WebSocket message: a frame, or a JSON array of them (``batch``)."""
    data = json.loads(raw)
    return data if isinstance(data, list) else [data]


def stream_key(spec: dict[str, Any]) -> str:
    return f"ticket:{spec['ticket_id']}" if spec["stream"] == "ticket" else spec["stream"]


@dataclass
class Score:
    expected: int = 0
    missing: int = 0
    duplicates: int = 0
    closed: int = 0  # sockets the server closed before the end (they miss what follows)
    messages: int = 0  # WebSocket messages that held event frames (one each, or arrays)
    event_frames: int = 0  # event frames in them (copies included)
    frame_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)


# ------------------------------------------------------------------------------ load
@dataclass
class Scenario:
    """``tickets``: sockets spread over tickets, messages posted to them (each reaches the
    ticket's subscribers); ``queue``: every socket an agent's on the queue, status changes
    (each reaches every socket)."""

    name: str
    sockets: int
    tickets: int
    rate: float
    target_p99_ms: float

    @property
    def subscribers(self) -> int:
        return self.sockets // self.tickets if self.name == "tickets" else self.sockets


@dataclass
class Result:
    layer: str
    scenario: Scenario
    duration: float
    processes: int = 1
    commands: int = 0
    errors: int = 0
    not_sent: int = 0
    http_ms: list[float] = field(default_factory=list)
    late_start_ms: list[float] = field(default_factory=list)
    score: Score = field(default_factory=Score)
    cpu_server: float = 0.0
    cpu_client: float = 0.0
    cpu_other: float = 0.0
    cpu_server_drained: float = 0.0  # server CPU seconds from the measured start to the last frame
    wall: float = 0.0
    fanout: dict[str, int] = field(default_factory=dict)


async def run_load(
    server: AppServer,
    layer: str,
    scenario: Scenario,
    duration: float,
    warmup: float,
    client_procs: int,
    fanout: Callable[[], dict[str, int]] | None,
    batch: bool = True,
) -> Result:
    result = Result(layer, scenario, duration)
    tickets = scenario.tickets
    with httpx.Client(base_url=server.base, timeout=30) as c:

        def login(email: str) -> str:
            r = c.post("/api/auth/demo-login", json={"email": email})
            r.raise_for_status()
            return str(r.json()["access"])

        agent = login(AGENT)
        ticket_ids, customers = [], []
        for i in range(tickets):
            token = login(f"bench.rt.{layer}.{scenario.name}.{i}@example.test")
            r = c.post(
                "/api/tickets",
                json={"subject": f"Realtime bench {i}", "description": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            ticket_ids.append(r.json()["id"])
            customers.append(token)

    specs: list[tuple[str, dict[str, Any]]] = []
    for j in range(scenario.sockets):
        if scenario.name == "queue":
            specs.append((agent, {"stream": "queue"}))
            continue
        t = j % tickets
        token = customers[t] if j < tickets else agent
        specs.append((token, {"stream": "ticket", "ticket_id": ticket_ids[t]}))
    ws_base = server.base.replace("http://", "ws://")
    ctx = multiprocessing.get_context("spawn")
    workers = []
    for w in range(client_procs):
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=socket_worker, args=(child, ws_base, specs[w::client_procs], batch)
        )
        proc.start()
        workers.append((proc, parent))
    opened = sum(parent.recv()[1] for _, parent in workers)
    log(f"{opened} sockets subscribed ({scenario.name}), in {client_procs} client processes")

    pool: asyncio.Queue[RawHTTP] = asyncio.Queue()
    for _ in range(HTTP_CONNECTIONS):
        pool.put_nowait(RawHTTP(server.port))
    # (stream key, request start, response read, position, measured)
    sent: list[tuple[str, float, float, int | None, bool]] = []
    resolved = [False] * tickets  # the queue scenario toggles each ticket open <-> resolved
    busy = [False] * tickets

    pending = [0]  # commands started and not answered

    async def command(k: int, measured: bool, due: float) -> None:
        pending[0] += 1
        try:
            await one_command(k, measured, due)
        finally:
            pending[0] -= 1

    async def one_command(k: int, measured: bool, due: float) -> None:
        t = k % tickets
        http = await pool.get()
        start = time.monotonic()
        if measured:
            result.late_start_ms.append((start - due) * 1000)
        try:
            if scenario.name == "queue":
                if busy[t]:  # its previous change is still on the way: skip, count it
                    status, body = 599, b"{}"
                else:
                    busy[t] = True
                    target = "open" if resolved[t] else "resolved"
                    path = f"/api/tickets/{ticket_ids[t]}/status"
                    status, body = await http.request(
                        post_bytes(server.port, path, agent, {"status": target})
                    )
                    busy[t] = False
                    if status == 200:
                        resolved[t] = not resolved[t]
                key = "queue"
            else:
                path = f"/api/tickets/{ticket_ids[t]}/messages"
                status, body = await http.request(
                    post_bytes(server.port, path, agent, {"body": f"bench {k}"})
                )
                key = f"ticket:{ticket_ids[t]}"
        except Exception:
            status, body = 599, b"{}"
            busy[t] = False
            http = RawHTTP(server.port)
        done = time.monotonic()
        pool.put_nowait(http)
        if status not in (200, 201):
            result.errors += measured
            return
        if measured:
            result.http_ms.append((done - start) * 1000)
        sent.append((key, start, done, json.loads(body)["position"], measured))

    server_procs = tree(server.pid)
    clients = [psutil.Process(), *(psutil.Process(p.pid) for p, _ in workers)]
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    total = warmup + duration
    k = 0
    cpu_before: tuple[float, float, float] | None = None
    fan_before: dict[str, int] = {}
    while True:
        due = t0 + k / scenario.rate
        if due - t0 >= total:
            break
        measured = due - t0 >= warmup
        if measured and cpu_before is None:
            cpu_before = (cpu_seconds(server_procs), cpu_seconds(clients), machine_busy_seconds())
            fan_before = fanout() if fanout else {}
            measure_start = time.monotonic()
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if pending[0] >= MAX_BACKLOG:
            # The server is not keeping up: a command not sent is a command not taken (it
            # shows in Commands/s and Not sent), and the row still ends on time.
            result.not_sent += measured
        else:
            tasks.append(asyncio.create_task(command(k, measured, due)))
        k += 1
    await asyncio.gather(*tasks)
    result.wall = time.monotonic() - measure_start
    assert cpu_before is not None
    result.cpu_server = (cpu_seconds(server_procs) - cpu_before[0]) / result.wall
    result.cpu_client = (cpu_seconds(clients) - cpu_before[1]) / result.wall
    busy_cores = (machine_busy_seconds() - cpu_before[2]) / result.wall
    result.cpu_other = max(busy_cores - result.cpu_server - result.cpu_client, 0.0)
    expected: dict[str, list[tuple[int, float, float]]] = {}
    for key, start, done, position, measured in sent:
        if measured and position is not None:
            result.commands += 1
            expected.setdefault(key, []).append((position, start, done))
    for _, parent in workers:
        parent.send(expected)  # each waits for its frames, then scores them
    scores: list[Score] = await asyncio.get_running_loop().run_in_executor(
        None, lambda: [parent.recv() for _, parent in workers]
    )
    # A server that falls behind delivers part of the measured frames after the load: its
    # CPU per frame counts the CPU until the sockets stopped waiting (they wait DRAIN_QUIET
    # seconds after the last frame, idle time the server spends on heartbeats only).
    result.cpu_server_drained = cpu_seconds(server_procs) - cpu_before[0]
    if fanout:
        await asyncio.sleep(2.5)  # the counters are reported every 2 s
        after = fanout()
        result.fanout = {k: after.get(k, 0) - fan_before.get(k, 0) for k in after}
    for (proc, _), score in zip(workers, scores, strict=True):
        result.score.expected += score.expected
        result.score.missing += score.missing
        result.score.duplicates += score.duplicates
        result.score.closed += score.closed
        result.score.messages += score.messages
        result.score.event_frames += score.event_frames
        result.score.frame_ms += score.frame_ms
        result.score.end_to_end_ms += score.end_to_end_ms
        proc.join(30)
    while not pool.empty():
        await pool.get_nowait().close()
    return result


# ------------------------------------------------------------------------------ report
VARIANTS = {
    # name: (label, Redis, uvicorn workers, fan-out)
    "memory": ("in-memory, 1 process (`make run`)", False, 1, ""),
    "redis": ("Redis, 1 process", True, 1, "leader"),
    "redis-2w-leader": ("Redis, 2 processes, leader publishes", True, 2, "leader"),
    "redis-2w-local": ("Redis, 2 processes, each delivers its own", True, 2, "local"),
}


def build_results(
    results_: list[Result], db: Database, redis_kind: str, args: argparse.Namespace
) -> dict[str, Any]:
    ms = ",.1f"
    rows = []
    targets = []
    fan_rows = []
    for r in results_:
        s, sc = r.scenario, r.score
        p99 = percentile(sc.frame_ms, 99)
        rate = r.commands / r.wall
        frames = len(sc.frame_ms)
        rows.append(
            [
                s.name,
                r.layer,
                rate,
                r.errors,
                r.not_sent,
                percentile(r.http_ms, 50),
                percentile(r.http_ms, 99),
                frames,
                sc.expected,
                sc.missing,
                sc.duplicates,
                sc.closed,
                sc.event_frames / sc.messages if sc.messages else float("nan"),
                percentile(sc.frame_ms, 50),
                p99,
                max(sc.frame_ms, default=float("nan")),
                percentile(sc.end_to_end_ms, 99),
                percentile(r.late_start_ms, 99),
                r.cpu_server,
                r.cpu_client,
                r.cpu_other,
                r.cpu_server * r.wall / frames * 1e6 if frames else float("nan"),
                r.cpu_server_drained / frames * 1e6 if frames else float("nan"),
            ]
        )
        targets.append(
            [
                s.name,
                r.layer,
                p99,
                s.target_p99_ms,
                rate,
                s.rate,
                sc.missing == 0 and sc.duplicates == 0,
                p99 < s.target_p99_ms and rate >= 0.95 * s.rate and sc.missing == 0,
            ]
        )
        if r.fanout:
            events = r.fanout.get("events", 0)
            fan_rows.append(
                [
                    s.name,
                    r.layer,
                    events,
                    r.fanout.get("published", 0) / events if events else float("nan"),
                    r.fanout.get("delivered", 0) / events if events else float("nan"),
                    r.fanout.get("duplicates", 0),
                ]
            )
    setup = {
        "PostgreSQL": f"{db.version} ({db.kind})",
        "Redis": redis_kind,
        "Scenario tickets": f"{args.sockets} WebSockets on {args.tickets} tickets "
        f"({args.sockets // args.tickets} subscribers per ticket, the ticket's customer and "
        f"agents); `POST /api/tickets/{{id}}/messages` open-loop at {args.rate:.0f} commands/s",
        "Scenario queue": f"{args.queue_sockets} agent WebSockets on the queue; `POST "
        f"/api/tickets/{{id}}/status` (open ↔ resolved) over {args.queue_tickets} tickets "
        f"open-loop at {args.queue_rate:.0f} commands/s (automatic assignment off)",
        "Load": f"{HTTP_CONNECTIONS} keep-alive HTTP connections from the parent process; the "
        f"sockets in {args.client_procs} client processes; {args.warmup:.0f} s warm-up + "
        f"{args.duration:.0f} s per row",
        "Machine load": args.background,
    }
    return results(
        BENCH,
        " ".join([".venv/bin/python bench/realtime.py", *args.argv]),
        machine(),
        setup,
        [
            table(
                "Frames",
                [
                    column("Scenario"),
                    column("Server"),
                    column("Commands/s", ",.0f"),
                    column("Errors", "d"),
                    column("Not sent", ",d"),
                    column("HTTP p50 ms", ms),
                    column("HTTP p99 ms", ms),
                    column("Frames", ",d"),
                    column("Expected", ",d"),
                    column("Missing", "d"),
                    column("Duplicates", "d"),
                    column("Sockets closed", "d"),
                    column("Frames per message", ",.2f"),
                    column("Frame p50 ms", ms),
                    column("Frame p99 ms", ms),
                    column("Frame max ms", ms),
                    column("Request→frame p99 ms", ms),
                    column("Send lag p99 ms", ms),
                    column("CPU server", ",.2f"),
                    column("CPU client", ",.2f"),
                    column("CPU other", ",.2f"),
                    column("Server CPU µs per frame", ",.0f"),
                    column("… until the last frame", ",.0f"),
                ],
                rows,
            ),
            table(
                "Fan-out counters (Redis rows; per event the server's push stored)",
                [
                    column("Scenario"),
                    column("Server"),
                    column("Events", ",d"),
                    column("Group messages published per event", ",.2f"),
                    column("Frames to sockets per event", ",.1f"),
                    column("Copies dropped", "d"),
                ],
                fan_rows,
            ),
            table(
                "Against the target",
                [
                    column("Scenario"),
                    column("Server"),
                    column("Frame p99 ms", ms),
                    column("Target ms", ",.0f"),
                    column("Commands/s taken", ",.0f"),
                    column("Offered", ",.0f"),
                    column("0 missing, 0 duplicates"),
                    column("Target met"),
                ],
                targets,
            ),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--queue-sockets", type=int, default=200)
    parser.add_argument("--queue-tickets", type=int, default=400)
    parser.add_argument("--queue-rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--client-procs", type=int, default=4, help="processes of sockets")
    parser.add_argument(
        "--runs",
        default="tickets:memory,tickets:redis,tickets:redis-2w-leader,tickets:redis-2w-local,"
        "queue:redis,queue:redis-2w-leader,queue:redis-2w-local",
        help="scenario:variant[:single], comma-separated; variants: "
        + ", ".join(VARIANTS)
        + "; single: the clients take one frame per message (no ?batch=1)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a source tree of an earlier commit: adds its Redis 2-process rows (before)",
    )
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    scenarios = {
        "tickets": Scenario("tickets", args.sockets, args.tickets, args.rate, TARGET_P99_MS),
        "queue": Scenario(
            "queue", args.queue_sockets, args.queue_tickets, args.queue_rate, QUEUE_P99_MS
        ),
    }
    runs = [tuple(r.split(":", 2)) for r in args.runs.split(",")]
    if args.baseline is not None:
        runs += [("tickets", "before-2w"), ("queue", "before-2w")]

    background = background_cores(3.0)
    args.background = (
        f"{background:.2f} cores busy with other work just before the run (2 cores in all); "
        "the CPU other column is that during each row"
    )
    log(args.background)
    db = start_database(DB_NAME, db_url=args.db_url, pg_dir=PG_DIR)
    redis = Redis()
    results_: list[Result] = []
    try:
        for scenario_name, variant, *single in runs:
            scenario = scenarios[scenario_name]
            batch = single != ["single"]
            key = variant if batch else f"{variant}-single"  # names this row's files and keys
            cwd = BASE_DIR
            if variant == "before-2w":
                label, uses_redis, procs, fan = (
                    f"Redis, 2 processes, each publishes every frame (before: {args.baseline})",
                    True,
                    2,
                    "",
                )
                cwd = args.baseline.resolve()
            else:
                label, uses_redis, procs, fan = VARIANTS[variant]
            prefix = f"bench.{os.getpid()}.{scenario_name}.{key}."
            env = {}
            if uses_redis:
                env = {
                    "DESKSTREAM_REDIS_URL": redis.url,
                    "DESKSTREAM_CHANNELS_PREFIX": prefix,
                    "DESKSTREAM_PUSH_FANOUT": fan or "leader",
                }
            # chDB's directory (analytics under make run) belongs to one database: each row
            # has a fresh database, so a fresh directory too.
            chdb = LOG_DIR / f"chdb-{scenario_name}-{key}"
            shutil.rmtree(chdb, ignore_errors=True)
            env["DESKSTREAM_ANALYTICS_PATH"] = str(chdb)
            if scenario_name == "queue":  # the commands toggle unassigned tickets' status
                env["DESKSTREAM_AUTO_ASSIGN"] = "0"
            workers: tuple[str, ...] = ("--workers", str(procs)) if procs > 1 else ()
            log(f"{scenario_name}: starting the server ({label})")
            server = start_server(key, db, env, workers, cwd=cwd)

            def fanout(prefix: str = prefix, local: bool = fan == "local") -> dict[str, int]:
                found = read_fanout(redis.url, prefix)
                keys = ("published", "delivered", "duplicates")
                sums = {k: sum(int(c.get(k, 0)) for c in found.values()) for k in keys}
                # Events: every process counts each one when each follows the log (local),
                # only the publisher does when one leads.
                events = [int(c.get("events", 0)) for c in found.values()]
                sums["events"] = (max(events, default=0) if local else sum(events)) or 0
                return sums

            try:
                result = asyncio.run(
                    run_load(
                        server,
                        key,
                        scenario,
                        args.duration,
                        args.warmup,
                        args.client_procs,
                        fanout if uses_redis and variant != "before-2w" else None,
                        batch,
                    )
                )
            finally:
                server.stop()
            result.layer = label if batch else f"{label}, one frame per message"
            result.processes = procs
            results_.append(result)
            sc = result.score
            log(
                f"{scenario_name} {key}: {result.commands / result.wall:.0f} commands/s, "
                f"frame p50 {percentile(sc.frame_ms, 50):.1f} p99 "
                f"{percentile(sc.frame_ms, 99):.1f} ms, missing {sc.missing}, duplicates "
                f"{sc.duplicates}, frames per message "
                f"{sc.event_frames / max(sc.messages, 1):.2f}, CPU server "
                f"{result.cpu_server:.2f} (µs per frame "
                f"{result.cpu_server * result.wall / max(len(sc.frame_ms), 1) * 1e6:.0f}, until "
                f"the last frame {result.cpu_server_drained / max(len(sc.frame_ms), 1) * 1e6:.0f}"
                f") client "
                f"{result.cpu_client:.2f} other {result.cpu_other:.2f}, fan-out {result.fanout}"
            )
    finally:
        redis.stop()
        stop_database(db)
    doc = build_results(results_, db, redis.kind, args)
    publish(doc, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
