"""WebSocket push latency: from a command's HTTP response to its frame at every subscriber.

Run it as ``.venv/bin/python bench/realtime.py [--sockets 200] [--rate 100] [--duration 20]``.

What it does, for each server variant (``--variants``: the in-memory channel layer as
``make run`` serves it; the Redis layer, as production and the tests use it; Redis with two
uvicorn workers):

1. Uses the PostgreSQL given by ``--db-url``, else the server on 127.0.0.1:5432 (a fresh
   database ``deskstream_bench_rt``), else an embedded server under ``var/bench-rt-pg``.
2. Starts ``python -m config.launcher`` (demo mode, as ``make run``: the web server with the
   push projector, and the projector process beside it) on a free port.
3. Opens ``--tickets`` tickets (one customer each) and ``--sockets`` WebSockets spread over
   them: each ticket's customer plus agents, so every command has sockets/tickets subscribers.
4. Sends ``POST /api/tickets/{id}/messages`` open-loop at ``--rate`` commands/s (round robin
   over the tickets, 16 keep-alive connections) for ``--duration`` seconds after a warm-up,
   and records, for every command and every socket subscribed to its ticket, the time from
   reading the HTTP response to receiving the frame with the command's position. A frame
   that arrives before the response was read counts as 0 ms.
5. Writes its section of ``docs/benchmarks.md`` (between ``<!-- bench:realtime:start -->``
   and ``<!-- bench:realtime:end -->``) and stops everything it started, by PID.

The load generator and the 200 client sockets run in this process, on the same 2 cores as
the server: their CPU is reported with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from benchlib import free_port, log, machine, port_open, write_section
from websockets.asyncio.client import ClientConnection, connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

DOC = BASE_DIR / "docs" / "benchmarks.md"
START = "<!-- bench:realtime:start -->"
END = "<!-- bench:realtime:end -->"
HOST = "127.0.0.1"
PG_DIR = BASE_DIR / "var" / "bench-rt-pg"
LOG_DIR = BASE_DIR / "var" / "bench-rt"
DB_NAME = "deskstream_bench_rt"
HTTP_CONNECTIONS = 16
TARGET_P99_MS = 100.0
AGENT = "agent.ada@deskstream.test"


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


# ------------------------------------------------------------------------------ services
@dataclass
class Database:
    url: str
    kind: str
    version: str = ""
    embedded: Any = None


def start_database(db_url: str | None) -> Database:
    if db_url:
        db = Database(db_url, "given by --db-url")
    elif port_open(5432):
        admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        db = Database(f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}", "the server on :5432")
    else:
        from infra.postgres.embedded import ensure_database, server_url, start_embedded

        shutil.rmtree(PG_DIR, ignore_errors=True)
        server = start_embedded(PG_DIR)
        ensure_database(server_url(server, "postgres"), DB_NAME)
        db = Database(server_url(server, DB_NAME), "embedded", embedded=server)
    with psycopg.connect(db.url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        db.version = str(row[0]) if row else "?"
    return db


def stop_database(db: Database) -> None:
    if db.embedded is not None:
        with contextlib.suppress(Exception):
            db.embedded.cleanup()
        shutil.rmtree(PG_DIR, ignore_errors=True)


class Redis:
    """The machine's Redis on :6379 if it answers, else a redis-server started here."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if os.environ.get("DESKSTREAM_REDIS_URL"):
            self.url, self.kind = os.environ["DESKSTREAM_REDIS_URL"], "DESKSTREAM_REDIS_URL"
        elif port_open(6379):
            self.url, self.kind = "redis://127.0.0.1:6379/0", "the server on :6379"
        else:
            port = free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
            while not port_open(port):
                time.sleep(0.05)
            self.url, self.kind = f"redis://127.0.0.1:{port}/0", f"redis-server on :{port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class Server:
    def __init__(
        self, name: str, db: Database, env: dict[str, str], args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.logfile = LOG_DIR / f"server-{name}.log"
        full = {
            k: v for k, v in os.environ.items() if not k.startswith(("DESKSTREAM_", "DATABASE_"))
        }
        full.update(DATABASE_URL=db.url, DESKSTREAM_DEMO="1", PYTHONUNBUFFERED="1", **env)
        with self.logfile.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "config.launcher", "--port", str(self.port), *args],
                cwd=BASE_DIR,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.logfile.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/api/schema/", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        pids = [p.pid for p in tree(self.proc.pid)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(5)


# ------------------------------------------------------------------------------ load
class RawHTTP:
    """One keep-alive HTTP/1.1 connection (httpx costs ~3 ms of CPU per request here)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        body = json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nAuthorization: Bearer {token}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


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
    server: Server,
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
            status, body = await http.post(
                f"/api/tickets/{ticket_ids[k % tickets]}/messages", agent, {"body": f"bench {k}"}
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

    server_procs = tree(server.proc.pid)
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
            busy = psutil.cpu_times()
            cpu_before = (
                cpu_seconds(server_procs),
                cpu_seconds([me]),
                sum(busy) - busy.idle - getattr(busy, "iowait", 0.0),
            )
            measure_start = time.monotonic()
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(command(k, measured, due)))
        k += 1
    await asyncio.gather(*tasks)
    result.wall = time.monotonic() - measure_start
    busy = psutil.cpu_times()
    assert cpu_before is not None
    result.cpu_server = (cpu_seconds(server_procs) - cpu_before[0]) / result.wall
    result.cpu_client = (cpu_seconds([me]) - cpu_before[1]) / result.wall
    machine = (sum(busy) - busy.idle - getattr(busy, "iowait", 0.0) - cpu_before[2]) / result.wall
    result.cpu_other = max(machine - result.cpu_server - result.cpu_client, 0.0)
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
def ms(x: float) -> str:
    return "n/a" if x != x else f"{x:,.1f}"


def render(results: list[Result], db: Database, redis_kind: str, args: argparse.Namespace) -> str:
    info = machine()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Real time (bench/realtime.py)",
        "",
        f"_Generated by `.venv/bin/python bench/realtime.py` on {now}; the script rewrites "
        "everything between the `bench:realtime` markers._",
        "",
        f"**Machine:** {info['cpu']}, {info['cores']} cores, {info['ram']}; Python "
        f"{info['python']}; PostgreSQL {db.version} ({db.kind}); Redis: {redis_kind}. Commit "
        f"{info['commit']}. The load generator and all client sockets run in one process on "
        "the same machine. Rows: the in-memory layer as `make run` serves it; the Redis layer "
        "with one server process; and with `--workers 2` (two uvicorn processes, each running "
        "the push projector; each publishes every frame, the sockets drop the copies).",
        "",
        f"**Load:** {args.sockets} WebSockets, each subscribed to one of {args.tickets} tickets "
        f"(each ticket's customer plus agents, so {args.sockets // args.tickets} subscribers per "
        f"ticket). `POST /api/tickets/{{id}}/messages` open-loop at {args.rate:.0f} commands/s, "
        f"round robin over the tickets, over {HTTP_CONNECTIONS} keep-alive connections, for "
        f"{args.duration:.0f} s after a {args.warmup:.0f} s warm-up. The server is `python -m "
        "config.launcher` (as `make run` starts it: one uvicorn process with the push "
        "projector, and the other projectors in a second process). **Frame latency** is "
        "measured per command and subscriber: from reading the "
        "command's HTTP response to receiving the frame carrying the command's position (0 if "
        "the frame came first).",
        "",
        "| Server | Commands/s | Errors | HTTP p50 ms | HTTP p99 ms | Frames | Missing "
        "| Duplicates | Frame p50 ms | Frame p99 ms | Frame max ms | Request→frame p50 / p99 ms "
        "| Send lag p99 ms | CPU server / client / other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.layer} | {r.commands / r.wall:,.0f} | {r.errors} | "
            f"{ms(percentile(r.http_ms, 50))} | {ms(percentile(r.http_ms, 99))} | "
            f"{len(r.frame_ms):,} of {r.expected:,} | {r.missing} | {r.duplicates} | "
            f"{ms(percentile(r.frame_ms, 50))} | {ms(percentile(r.frame_ms, 99))} | "
            f"{ms(max(r.frame_ms, default=float('nan')))} | "
            f"{ms(percentile(r.end_to_end_ms, 50))} / {ms(percentile(r.end_to_end_ms, 99))} | "
            f"{ms(percentile(r.late_start_ms, 99))} | "
            f"{r.cpu_server:.2f} / {r.cpu_client:.2f} / {r.cpu_other:.2f} |"
        )
    lines += [
        "",
        "*Request→frame* is measured from sending the command instead, so it includes the "
        "command's own time. *Send lag* is how late the load generator started commands "
        "against their schedule (all 16 connections busy, or the client starved of CPU): "
        "above a few ms the server did not take the offered rate. CPU is in cores (2.0 = both "
        "cores busy).",
        "",
        "### Against the target",
        "",
        f"Target: frame p99 < {TARGET_P99_MS:.0f} ms with 200 open sockets at 100 commands/s on "
        "a 2-core machine.",
        "",
    ]
    for r in results:
        p99 = percentile(r.frame_ms, 99)
        rate = r.commands / r.wall
        latency_ok = p99 < TARGET_P99_MS and r.missing == 0 and r.sockets >= 200
        rate_ok = rate >= 0.95 * max(r.rate, 100.0)
        lines.append(
            f"- {r.layer}: frame p99 **{ms(p99)} ms** with {r.sockets} sockets, {r.missing} "
            f"frames missing, {r.duplicates} duplicates: latency target "
            f"**{'met' if latency_ok else 'not met'}**; the server took **{rate:,.0f} of "
            f"{r.rate:,.0f} commands/s** offered: load target "
            f"**{'met' if rate_ok else 'not met'}**."
        )
    best = max(results, key=lambda r: r.commands / r.wall)
    frame_p50 = min(percentile(r.frame_ms, 50) for r in results)
    lines += [
        "",
        "### Interpretation",
        "",
        "- Push is not what limits this load. Frames reach every subscriber within the "
        f"p99 above of the command's HTTP response (median {ms(frame_p50)} ms at best): the "
        "projector picks the event up (through LISTEN, or handed its own process's appends) "
        "while the response is still on its way.",
        (
            f"- The command path took the offered load ({best.commands / best.wall:,.0f} of "
            f"{best.rate:,.0f} commands/s at best, HTTP p50 {ms(percentile(best.http_ms, 50))} "
            "ms; the commands benchmark above measures how far past this rate it goes); the "
            "push path itself had headroom."
            if best.commands / best.wall >= 0.95 * best.rate
            else f"- The command path is the limit: at most {best.commands / best.wall:,.0f} "
            "commands/s were taken (HTTP p50 of several hundred ms is queueing in a saturated "
            "server process), as in the commands benchmark above; the push path itself had "
            "headroom at these rates."
        ),
        "- With two uvicorn workers each worker runs a push projector and publishes every "
        "frame (the sockets drop the copies), beside the projector process: more busy "
        "processes than cores, so frames can wait for a core longer than with one web "
        "process (compare the Frame max column).",
        "- Every command's frame reached every subscribed socket exactly once (Frames, "
        "Missing, Duplicates), with two server processes publishing too.",
        "- The last column shows CPU taken by other processes on the machine during the run: "
        "on 2 cores it comes out of the server's share.",
    ]
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    args = parser.parse_args(argv)

    db = start_database(args.db_url)
    redis = Redis() if "redis" in args.variants else None
    results: list[Result] = []
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
            server = Server(layer, db, env, workers)
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
            result.layer = {
                "memory": "in-memory (`make run`)",
                "redis": "Redis (pub/sub)",
                "redis-2w": "Redis (pub/sub), 2 uvicorn workers",
            }.get(layer, layer)
            results.append(result)
            p50, p99 = percentile(result.frame_ms, 50), percentile(result.frame_ms, 99)
            log(
                f"{layer}: {result.commands / result.wall:.0f} commands/s, frame p50 {ms(p50)} "
                f"p99 {ms(p99)} ms, missing {result.missing}, duplicates {result.duplicates}"
            )
    finally:
        if redis is not None:
            redis.stop()
        stop_database(db)
    section = render(results, db, redis.kind if redis else "not used", args)
    if args.no_write:
        print(section)
    else:
        write_section(START, END, section)
        log(f"wrote {DOC.relative_to(BASE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
