"""WebSocket push latency: from a command's HTTP response to its frame at every subscriber.

Run it as ``.venv/bin/python bench/realtime.py [--sockets 200] [--rate 100] [--duration 20]``.

What it does, for each server variant (``--variants``: the in-memory channel layer as
``make run`` serves it; the Redis layer, as production and the tests use it; Redis with two
uvicorn workers):

1. Uses the PostgreSQL given by ``--db-url``, else a fresh database ``deskstream_bench_rt``
   on the server of ``DATABASE_URL`` (or 127.0.0.1:5432), else an embedded server under
   ``var/bench-rt-pg`` (``benchlib.start_database``).
2. Starts ``python -m infra.server.launcher`` (demo mode, as ``make run``: the web server with the
   push projector, and the projector process beside it) on a free port.
3. Opens ``--tickets`` tickets (one customer each) and ``--sockets`` WebSockets spread over
   them: each ticket's customer plus agents, so every command has sockets/tickets subscribers.
4. Sends ``POST /api/tickets/{id}/messages`` open-loop at ``--rate`` commands/s (round robin
   over the tickets, 16 keep-alive connections) for ``--duration`` seconds after a warm-up,
   and records, for every command and every socket subscribed to its ticket, the time from
   reading the HTTP response to receiving the frame with the command's position. A frame
   that arrives before the response was read counts as 0 ms.
5. Writes ``bench/results/realtime.json``, renders its section of ``docs/benchmarks.md``
   from it (``benchlib.publish``) and stops everything it started, by PID.

The load generator and the 200 client sockets run in this process, on the same 2 cores as
the server: their CPU is reported with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
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

BENCH = "realtime"
PG_DIR = BASE_DIR / "var" / "bench-rt-pg"
LOG_DIR = BASE_DIR / "var" / "bench-rt"
DB_NAME = "deskstream_bench_rt"
HTTP_CONNECTIONS = 16
TARGET_P99_MS = 100.0
AGENT = "agent.ada@deskstream.test"


def start_server(name: str, db: Database, env: dict[str, str], args: tuple[str, ...]) -> AppServer:
    server = AppServer(
        LOG_DIR / f"server-{name}.log",
        {"DATABASE_URL": db.url, "DESKSTREAM_DEMO": "1", "DESKSTREAM_RATE_LIMITS": "0", **env},
        args,
        drop=lambda k: k.startswith(("DESKSTREAM_", "DATABASE_")),
    )
    try:
        server.wait_ready("/api/schema/")
    except Exception:
        server.stop()
        raise
    return server


# ------------------------------------------------------------------------------ load
@dataclass
class Result:
    layer: str
    sockets: int
    tickets: int
    rate: float
    duration: float
    commands: int = 0
    errors: int = 0
    http_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    expected: int = 0
    missing: int = 0
    duplicates: int = 0
    late_start_ms: list[float] = field(default_factory=list)
    cpu_server: float = 0.0
    cpu_client: float = 0.0
    cpu_other: float = 0.0
    wall: float = 0.0


async def run_load(
    server: AppServer,
    layer: str,
    sockets: int,
    tickets: int,
    rate: float,
    duration: float,
    warmup: float,
) -> Result:
    result = Result(layer, sockets, tickets, rate, duration)
    with httpx.Client(base_url=server.base, timeout=30) as c:

        def login(email: str) -> str:
            r = c.post("/api/auth/demo-login", json={"email": email})
            r.raise_for_status()
            return str(r.json()["access"])

        agent = login(AGENT)
        ticket_ids, customers = [], []
        for i in range(tickets):
            token = login(f"bench.rt.{layer}.{i}@example.test")
            r = c.post(
                "/api/tickets",
                json={"subject": f"Realtime bench {i}", "description": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            ticket_ids.append(r.json()["id"])
            customers.append(token)

    ws_base = server.base.replace("http://", "ws://")
    received: list[dict[int, list[float]]] = [{} for _ in range(sockets)]
    subscribed_to = [j % tickets for j in range(sockets)]
    conns: list[ClientConnection] = []
    for j in range(sockets):
        t = subscribed_to[j]
        token = customers[t] if j < tickets else agent
        ws = await connect(f"{ws_base}/ws/?token={token}", proxy=None, max_queue=None)
        await ws.recv()  # ready
        await ws.send(
            json.dumps({"type": "subscribe", "stream": "ticket", "ticket_id": ticket_ids[t]})
        )
        while json.loads(await ws.recv())["type"] != "subscribed":
            pass
        conns.append(ws)
    log(f"{len(conns)} sockets subscribed to {tickets} tickets")

    async def reader(j: int, ws: ClientConnection) -> None:
        seen = received[j]
        with contextlib.suppress(Exception):
            async for raw in ws:
                now = time.monotonic()
                frame = json.loads(raw)
                if frame.get("type") == "event":
                    seen.setdefault(frame["position"], []).append(now)

    readers = [asyncio.create_task(reader(j, ws)) for j, ws in enumerate(conns)]
    pool: asyncio.Queue[RawHTTP] = asyncio.Queue()
    for _ in range(HTTP_CONNECTIONS):
        pool.put_nowait(RawHTTP(server.port))
    # (ticket, request start, response read, position, measured)
    sent: list[tuple[int, float, float, int | None, bool]] = []

    async def command(k: int, measured: bool, due: float) -> None:
        http = await pool.get()
        start = time.monotonic()
        if measured:
            result.late_start_ms.append((start - due) * 1000)
        try:
            path = f"/api/tickets/{ticket_ids[k % tickets]}/messages"
            status, body = await http.request(
                post_bytes(server.port, path, agent, {"body": f"bench {k}"})
            )
        except Exception:
            status, body = 599, b"{}"
            http = RawHTTP(server.port)
        done = time.monotonic()
        pool.put_nowait(http)
        if status != 201:
            result.errors += measured
            return
        if measured:
            result.http_ms.append((done - start) * 1000)
        sent.append((k % tickets, start, done, json.loads(body)["position"], measured))

    server_procs = tree(server.pid)
    me = psutil.Process()
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    total = warmup + duration
    k = 0
    cpu_before: tuple[float, float, float] | None = None
    while True:
        due = t0 + k / rate
        if due - t0 >= total:
            break
        measured = due - t0 >= warmup
        if measured and cpu_before is None:
            cpu_before = (cpu_seconds(server_procs), cpu_seconds([me]), machine_busy_seconds())
            measure_start = time.monotonic()
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(command(k, measured, due)))
        k += 1
    await asyncio.gather(*tasks)
    result.wall = time.monotonic() - measure_start
    assert cpu_before is not None
    result.cpu_server = (cpu_seconds(server_procs) - cpu_before[0]) / result.wall
    result.cpu_client = (cpu_seconds([me]) - cpu_before[1]) / result.wall
    busy = (machine_busy_seconds() - cpu_before[2]) / result.wall
    result.cpu_other = max(busy - result.cpu_server - result.cpu_client, 0.0)
    await asyncio.sleep(2.0)  # let the last frames arrive

    for ticket, start, done, position, measured in sent:
        if not measured:
            continue
        result.commands += 1
        for j in range(sockets):
            if subscribed_to[j] != ticket:
                continue
            result.expected += 1
            times = received[j].get(position) if position is not None else None
            if not times:
                result.missing += 1
                continue
            result.duplicates += len(times) - 1
            result.frame_ms.append(max(times[0] - done, 0.0) * 1000)
            result.end_to_end_ms.append((times[0] - start) * 1000)
    for ws in conns:
        await ws.close()
    for task in readers:
        task.cancel()
    while not pool.empty():
        await pool.get_nowait().close()
    return result


# ------------------------------------------------------------------------------ report
LABELS = {
    "memory": "in-memory (`make run`)",
    "redis": "Redis (pub/sub)",
    "redis-2w": "Redis (pub/sub), 2 uvicorn workers",
}


def build_results(
    results_: list[Result], db: Database, redis_kind: str, args: argparse.Namespace
) -> dict[str, Any]:
    ms = ",.1f"
    rows = [
        [
            r.layer,
            r.commands / r.wall,
            r.errors,
            percentile(r.http_ms, 50),
            percentile(r.http_ms, 99),
            len(r.frame_ms),
            r.expected,
            r.missing,
            r.duplicates,
            percentile(r.frame_ms, 50),
            percentile(r.frame_ms, 99),
            max(r.frame_ms, default=float("nan")),
            percentile(r.end_to_end_ms, 50),
            percentile(r.end_to_end_ms, 99),
            percentile(r.late_start_ms, 99),
            f"{r.cpu_server:.2f} / {r.cpu_client:.2f} / {r.cpu_other:.2f}",
        ]
        for r in results_
    ]
    targets = []
    for r in results_:
        p99 = percentile(r.frame_ms, 99)
        rate = r.commands / r.wall
        targets.append(
            [
                r.layer,
                p99,
                p99 < TARGET_P99_MS and r.missing == 0 and r.sockets >= 200,
                rate,
                r.rate,
                rate >= 0.95 * max(r.rate, 100.0),
            ]
        )
    setup = {
        "PostgreSQL": f"{db.version} ({db.kind})",
        "Redis": redis_kind,
        "Load": f"{args.sockets} WebSockets on {args.tickets} tickets "
        f"({args.sockets // args.tickets} subscribers per ticket); `POST "
        f"/api/tickets/{{id}}/messages` open-loop at {args.rate:.0f} commands/s over "
        f"{HTTP_CONNECTIONS} keep-alive connections, {args.warmup:.0f} s warm-up + "
        f"{args.duration:.0f} s",
        "Target": f"frame p99 < {TARGET_P99_MS:.0f} ms with 200 sockets at 100 commands/s",
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
                    column("Server"),
                    column("Commands/s", ",.0f"),
                    column("Errors", "d"),
                    column("HTTP p50 ms", ms),
                    column("HTTP p99 ms", ms),
                    column("Frames", ",d"),
                    column("Expected", ",d"),
                    column("Missing", "d"),
                    column("Duplicates", "d"),
                    column("Frame p50 ms", ms),
                    column("Frame p99 ms", ms),
                    column("Frame max ms", ms),
                    column("Request→frame p50 ms", ms),
                    column("Request→frame p99 ms", ms),
                    column("Send lag p99 ms", ms),
                    column("CPU server / client / other"),
                ],
                rows,
            ),
            table(
                "Against the target",
                [
                    column("Server"),
                    column("Frame p99 ms", ms),
                    column("Latency target met"),
                    column("Commands/s taken", ",.0f"),
                    column("Offered", ",.0f"),
                    column("Load target met"),
                ],
                targets,
            ),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--tickets", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--variants",
        default="memory,redis,redis-2w",
        help="memory: in-memory layer; redis: Redis layer; redis-2w: Redis, --workers 2",
    )
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    db = start_database(DB_NAME, db_url=args.db_url, pg_dir=PG_DIR)
    redis = Redis() if "redis" in args.variants else None
    results_: list[Result] = []
    try:
        for layer in args.variants.split(","):
            env = {}
            workers: tuple[str, ...] = ("--workers", "2") if layer.endswith("-2w") else ()
            if layer.startswith("redis"):
                assert redis is not None
                env = {
                    "DESKSTREAM_REDIS_URL": redis.url,
                    "DESKSTREAM_CHANNELS_PREFIX": f"bench.{os.getpid()}.",
                }
            log(f"starting the server ({layer} channel layer)")
            server = start_server(layer, db, env, workers)
            try:
                result = asyncio.run(
                    run_load(
                        server,
                        layer,
                        args.sockets,
                        args.tickets,
                        args.rate,
                        args.duration,
                        args.warmup,
                    )
                )
            finally:
                server.stop()
            result.layer = LABELS.get(layer, layer)
            results_.append(result)
            p50, p99 = percentile(result.frame_ms, 50), percentile(result.frame_ms, 99)
            log(
                f"{layer}: {result.commands / result.wall:.0f} commands/s, frame p50 {p50:.1f} "
                f"p99 {p99:.1f} ms, missing {result.missing}, duplicates {result.duplicates}"
            )
    finally:
        if redis is not None:
            redis.stop()
        stop_database(db)
    doc = build_results(results_, db, redis.kind if redis else "not used", args)
    publish(doc, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
