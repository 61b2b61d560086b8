"""Analytics: load rate into each adapter, and p95 of every dashboard query.

Run it as ``.venv/bin/python bench/analytics.py [--events 10000000] [--repeat 20] [--no-docs]``.

1. A synthetic history of ``--events`` ticket events over 90 days (about 6.5 events per
   ticket: opened, assigned, one to three replies, status changes, a few reopens and SLA
   breaches), as the domain's own event classes, made in this process (not stored in
   PostgreSQL: the bench measures the analytics side), ``--chunk`` events at a time.
2. Each chunk, generated once, goes to chDB (a directory under ``var/``) and to Debian's
   ClickHouse server (started here with its own config, stopped at the end) through the
   analytics projector (``ProjectionRunner`` over ``ClickHouseProjectionStore``, batches of
   ``--batch``), as the projector applies the log; load rate = events / seconds in that
   adapter's runner (generating the events is timed apart, not counted).
3. Every dashboard query (``infra.clickhouse.metrics.Metrics``, the 30 days to the last
   event, UTC, no filters) ``--repeat`` times each: p50 and p95, target p95 < 200 ms. The
   event counts (created/resolved per day, the summary's totals, throughput) read the count
   tables (ADR 0049); the rows marked "facts, FINAL" are the same counts computed at query
   time over ``analytics_events FINAL`` (the path before those tables), for comparison.
4. PostgreSQL (``--postgres``, a scratch database, dropped and made again): the same chunks
   folded into rows shaped like the read models, COPYed at the end, and the same aggregates
   computed by SQL over them, ``--repeat`` times each (``bench/analytics_postgres.py`` says
   what the read models can and cannot answer); target: at least 10x ClickHouse's time. Four
   answers are checked equal to ClickHouse's first.
The results go to ``bench/results/analytics.json`` and its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import analytics_postgres
from bench.benchlib import BASE_DIR, column, log, machine, percentile, publish, results, table
from domain.ticket import Ticket
from infra.clickhouse.embedded import ChdbDatabase, close_all
from infra.clickhouse.metrics import Filters, Metrics
from infra.clickhouse.native import ClickHouseServerDatabase
from infra.clickhouse.ports import AnalyticsDatabase
from infra.clickhouse.schema import EVENTS, KIND_SQL, TICKETS
from infra.clickhouse.server import start_clickhouse
from infra.clickhouse.sql import literal
from infra.clickhouse.store import ClickHouseProjectionStore
from projections.ports import Envelope
from projections.runner import ProjectionRunner

BENCH = "analytics"
TARGET_MS = 200.0
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
AGENTS = [f"agent-{i}" for i in range(40)]
TAGS = ["billing", "login", "bug", "refund", "shipping", "api", "mobile", "invoice"]
LANGS = ["en", "en", "en", "de", "fr", "es"]
PRIORITIES = ["low", "medium", "medium", "high", "urgent"]


def event(cls: Any, **fields: Any) -> Any:
    """A domain event built directly (its fields are the class's own)."""
    return cls(**fields)


def ticket_events(rng: random.Random, ticket: UUID, opened: datetime) -> list[Any]:
    """One ticket's life: opened, assigned, a conversation, resolved (sometimes reopened)."""
    customer = f"customer-{rng.randrange(20_000)}"
    priority = rng.choice(PRIORITIES)
    tags = rng.sample(TAGS, rng.randrange(3))
    agent = rng.choice(AGENTS)
    at = opened
    v = 1
    events: list[Any] = [
        event(
                Ticket.TicketOpened,
            originator_id=ticket, originator_version=1, timestamp=at,
            originator_topic="deskstream.ticket:Ticket", customer_id=customer, subject="s",
            description="d", priority=priority, tags=tags, language=rng.choice(LANGS),
            actor_id=customer, actor_role="customer",
        )
    ]  # fmt: skip

    def nxt(minutes: float) -> datetime:
        nonlocal at, v
        at += timedelta(minutes=rng.expovariate(1 / minutes))
        v += 1
        return at

    status = "open"

    def move(to: str, actor: str, role: str, minutes: float) -> None:
        nonlocal status
        events.append(
            event(
                Ticket.StatusChanged,
                originator_id=ticket, originator_version=v + 1, timestamp=nxt(minutes),
                from_status=status, to_status=to, actor_id=actor, actor_role=role, reason="",
            )
        )  # fmt: skip
        status = to

    events.append(
        event(
                Ticket.AgentAssigned,
            originator_id=ticket, originator_version=v + 1, timestamp=nxt(20), agent_id=agent,
            previous_agent_id=None, actor_id="automation", actor_role="system",
            policy="least_loaded", reason="",
        )
    )  # fmt: skip
    move("assigned", "automation", "system", 0.01)
    for _ in range(rng.randrange(1, 4)):
        events.append(
            event(
                Ticket.MessagePosted,
                originator_id=ticket, originator_version=v + 1, timestamp=nxt(90),
                message_id=uuid4(), author_id=agent, author_role="agent", body="b",
                internal=False, attachments=[],
            )
        )  # fmt: skip
    if rng.random() < 0.1:
        events.append(
            event(
                Ticket.SlaBreached,
                originator_id=ticket, originator_version=v + 1, timestamp=nxt(60),
                target="resolution", deadline=at, breached_at=at, priority=priority,
                policy="p", actor_id="automation", actor_role="system",
            )
        )  # fmt: skip
    if rng.random() < 0.85:
        move("resolved", agent, "agent", 600)
        if rng.random() < 0.1:
            move("in_progress", customer, "customer", 1440)
            move("resolved", agent, "agent", 300)
    return events


def history(events: int, seed: int = 7) -> Iterator[Envelope]:
    """``events`` envelopes in log order (tickets opened through the 90 days, each ticket's
    events interleaved with the others' by time)."""
    rng = random.Random(seed)
    spacing = DAYS * 86400 / (events / 6.5)  # about 6.5 events per ticket
    pending: list[tuple[datetime, int, Any]] = []
    # Ties on time (a move a few microseconds after the one before can round to the same
    # time) go in the order the events were made, which is each ticket's version order.
    made = itertools.count()
    position = 0
    i = 0
    while True:
        opened = START + timedelta(seconds=i * spacing)
        i += 1
        while pending and pending[0][0] <= opened:
            _, _, event = heapq.heappop(pending)
            position += 1
            yield Envelope(position, event)
            if position >= events:
                return
        for event in ticket_events(rng, UUID(int=rng.getrandbits(128)), opened):
            heapq.heappush(pending, (event.timestamp, next(made), event))


class Window:
    """An ``EventSource`` over the chunk of the history being loaded: each chunk is generated
    once and applied to every adapter in turn (positions are consecutive)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def head(self) -> int:
        return self.envelopes[-1].position if self.envelopes else 0

    def read(self, after: int, limit: int) -> Sequence[Envelope]:
        if not self.envelopes:
            return []
        first = max(after - self.envelopes[0].position + 1, 0)
        return self.envelopes[first : first + limit]

    def wait(self, after: int, timeout: float) -> None:
        pass


def chunks(events: int, size: int) -> Iterator[list[Envelope]]:
    it = history(events)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def load_history(
    adapters: Mapping[str, AnalyticsDatabase],
    models: analytics_postgres.ReadModels | None,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Generate the history once, chunk by chunk, and apply each chunk to every adapter
    through the analytics projector (``ProjectionRunner`` over ``ClickHouseProjectionStore``,
    batches of ``--batch``) and to the read-model rows. Returns the seconds spent in each
    adapter's runner (the load time: generating and folding for PostgreSQL not included),
    and under ``"generate"`` and ``"fold"`` the other two."""
    window = Window()
    runners = {
        name: ProjectionRunner(window, ClickHouseProjectionStore(db), batch_size=args.batch)
        for name, db in adapters.items()
    }
    seconds = dict.fromkeys([*adapters, "generate", "fold"], 0.0)
    done, logged = 0, 0
    t = time.perf_counter()
    for chunk in chunks(args.events, args.chunk):
        seconds["generate"] += time.perf_counter() - t
        window.envelopes = chunk
        for name, runner in runners.items():
            t = time.perf_counter()
            runner.catch_up()
            seconds[name] += time.perf_counter() - t
        if models is not None:
            t = time.perf_counter()
            models.add(chunk)
            seconds["fold"] += time.perf_counter() - t
        done += len(chunk)
        if done - logged >= 500_000 or done == args.events:
            logged = done
            rates = ", ".join(f"{n} {done / seconds[n]:,.0f}/s" for n in adapters)
            log(f"loaded {done:,} events: {rates} (generated in {seconds['generate']:.0f} s)")
        t = time.perf_counter()
    return seconds


def queries(m: Metrics, f: Filters) -> dict[str, Callable[[], Any]]:
    return {
        "summary (KPI cards)": lambda: m.summary(f),
        "open now by status": lambda: m.open_now(f),
        "created/resolved per day": lambda: m.daily(f),
        "status over time": lambda: m.status_over_time(f),
        "first-response time": lambda: m.first_response(f),
        "resolution time": lambda: m.resolution(f),
        "SLA": lambda: m.sla(f),
        "backlog by agent": lambda: m.backlog(f),
        "agent throughput": lambda: m.throughput(f),
        "reopen rate": lambda: m.reopen_rate(f),
        "volume by tag": lambda: m.volume(f, "tag"),
        "event totals": lambda: m.totals(f),
        "AI drafts per agent": lambda: m.drafts(f),
        "satisfaction (CSAT)": lambda: m.satisfaction(f),
        "created/resolved per day, one tag": lambda: m.daily(tagged(f)),
        "status over time, one tag": lambda: m.status_over_time(tagged(f)),
        **set_queries(m, f),
        **fact_queries(m, f),
    }


def set_queries(m: Metrics, f: Filters) -> dict[str, Callable[[], Any]]:
    """The queries the sums, the tickets by field, the ticket sums and the move sums serve
    (ADR 0058, 0059, 0060, 0063, 0064), from the sets or the ticket states instead (the path
    before)."""
    sets = Metrics(m.db, sums=False, by_field=False)
    return {
        "summary (KPI cards) (ticket states)": lambda: sets.summary(f),
        "first-response time (ticket states)": lambda: sets.first_response(f),
        "resolution time (ticket states)": lambda: sets.resolution(f),
        "SLA (ticket states)": lambda: sets.sla(f),
        "backlog by agent (ticket states)": lambda: sets.backlog(f),
        "volume by tag (ticket states)": lambda: sets.volume(f, "tag"),
        "created/resolved per day (sets)": lambda: sets.daily(f),
        "event totals (sets)": lambda: sets.totals(f),
        "status over time (sets)": lambda: sets.status_over_time(f),
        "agent throughput (sets)": lambda: sets.throughput(f),
        "open now by status (ticket states)": lambda: sets.open_now(f),
        "status over time, one tag (per-ticket sets)": lambda: sets.status_over_time(tagged(f)),
    }


def tagged(f: Filters) -> Filters:
    return Filters(f.date_from, f.date_to, f.tz, tag=TAGS[0])


def fact_queries(m: Metrics, f: Filters) -> dict[str, Callable[[], Any]]:
    """The count tables' answers computed over the facts at query time (the old path)."""
    where = f"FROM {EVENTS} FINAL WHERE {f.within('occurred_at')}"
    per_day = (
        f"SELECT toDate(occurred_at, 'UTC') AS day, {KIND_SQL} AS kind, count() {where} "
        "AND kind IN ('created', 'resolved') GROUP BY day, kind"
    )
    totals = f"SELECT {KIND_SQL} AS kind, count() {where} AND kind != '' GROUP BY kind"
    return {
        "created/resolved per day (facts, FINAL)": lambda: m.db.query(per_day),
        "event totals (facts, FINAL)": lambda: m.db.query(totals),
        "status over time (facts, FINAL)": lambda: status_moves_from_facts(m, f),
        "status over time, one tag (facts, FINAL)": lambda: status_moves_from_facts(m, tagged(f)),
    }


def status_moves_from_facts(m: Metrics, f: Filters) -> list[tuple[str, str, int]]:
    """``Metrics.status_moves`` computed over the facts (``FINAL``) at query time, of the
    tickets whose fields now match: the path before the moves' count tables (ADRs 0053,
    0056), timed for comparison and checked equal to them."""
    narrowing = f.narrowing()
    among = (
        f" AND ticket_id IN (SELECT ticket_id FROM {TICKETS} FINAL WHERE 1{narrowing})"
        if narrowing
        else ""
    )
    tz = literal(f.tz)
    before = f"occurred_at < {literal(f.end)}{among}"
    rows = m.db.query(
        "SELECT toString(day), status, sum(delta) FROM ("
        f"SELECT toDate(occurred_at, {tz}) AS day, status_to AS status, 1 AS delta "
        f"FROM {EVENTS} FINAL WHERE event_type IN ('TicketOpened', 'StatusChanged') "
        f"AND {before} "
        "UNION ALL "
        f"SELECT toDate(occurred_at, {tz}) AS day, status_from AS status, -1 AS delta "
        f"FROM {EVENTS} FINAL WHERE event_type = 'StatusChanged' AND {before}"
        ") GROUP BY day, status"
    )
    return [(str(day), str(status), int(delta)) for day, status, delta in rows]


def measure(name: str, db: AnalyticsDatabase, args: argparse.Namespace) -> dict[str, Any]:
    """The dashboard queries' timings on one loaded adapter, and three answers to compare."""
    rows = db.query("SELECT count() FROM analytics_events")[0][0]
    f = window()
    m = Metrics(db)
    timings = time_queries(name, queries(m, f), args.repeat)
    answers = {
        "open": m.open_now(f),
        "backlog": m.backlog(f),
        "daily": m.daily(f),
        "first_responses": m.statistics(f, "first_response")["count"],
    }
    check_counts(m, f)
    log(
        f"{name}: the sums equal the sets, the ticket sums the states, the count tables' "
        "totals and moves the facts' (FINAL)"
    )
    return {"rows": rows, "timings": timings, "answers": answers}


def check_counts(m: Metrics, f: Filters) -> None:
    """The sums answer what the sets do, and the count tables what the facts do (the same
    events, each once)."""
    if not (m._summed(f) and m._fielded(tagged(f)) and m._ticket_summed(f) and m._moved(f)):
        raise SystemExit("the store did not say the sums and the tickets by field are whole")
    sets = set_queries(m, f)
    for name, sums in (
        ("summary (KPI cards) (ticket states)", m.summary),
        ("first-response time (ticket states)", m.first_response),
        ("resolution time (ticket states)", m.resolution),
        ("SLA (ticket states)", m.sla),
        ("backlog by agent (ticket states)", m.backlog),
        ("volume by tag (ticket states)", lambda g: m.volume(g, "tag")),
        ("created/resolved per day (sets)", m.daily),
        ("event totals (sets)", m.totals),
        ("status over time (sets)", m.status_over_time),
        ("agent throughput (sets)", m.throughput),
        ("open now by status (ticket states)", m.open_now),
        ("status over time, one tag (per-ticket sets)", lambda g: m.status_over_time(tagged(g))),
    ):
        if sums(f) != sets[name]():
            raise SystemExit(f"{name}: the sums differ from the sets")
    facts = fact_queries(m, f)
    found = {str(kind): int(n) for kind, n in facts["event totals (facts, FINAL)"]()}
    totals = m.totals(f)
    expected = {
        "created": totals["created"],
        "resolved": totals["resolved"],
        "reopened": totals["reopened"],
        "breach:first_response": totals["first_response_breaches"],
        "breach:resolution": totals["resolution_breaches"],
        "staff_reply": totals["staff_replies"],
    }
    if {k: v for k, v in expected.items() if v} != found:
        raise SystemExit(f"count tables {expected} differ from the facts {found}")
    if net(facts["status over time (facts, FINAL)"]()) != net(m.status_moves(f)):
        raise SystemExit("the status count table differs from the facts")
    one_tag = facts["status over time, one tag (facts, FINAL)"]()
    if net(one_tag) != net(m.status_moves(tagged(f))):
        raise SystemExit("the per-ticket status count table differs from the facts")


def net(moves: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """(day, status) -> tickets in - tickets out, the zeros left out."""
    out: dict[tuple[str, str], int] = {}
    for day, status, n in moves:
        out[(day, status)] = out.get((day, status), 0) + n
    return {k: n for k, n in out.items() if n}


def window() -> Filters:
    """The dashboard's default view at the end of the history: its last 30 days, UTC."""
    last = START + timedelta(days=DAYS)
    return Filters((last - timedelta(days=29)).date(), last.date())


def time_queries(
    name: str, runs: Mapping[str, Callable[[], Any] | None], repeat: int
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for query, run in runs.items():
        if run is None:
            continue
        run()  # warm
        samples = []
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t) * 1000)
        timings[query] = samples
        log(f"{name}: {query}: p95 {percentile(samples, 95):.1f} ms")
    return timings


def measure_postgres(
    url: str,
    models: analytics_postgres.ReadModels,
    args: argparse.Namespace,
    clickhouse: dict[str, Any],
) -> dict[str, Any]:
    import psycopg

    admin, _, name = url.rpartition("/")
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    tickets, messages, load = models.load(url)
    log(f"postgres: {tickets:,} tickets and {messages:,} messages COPYed in {load:.1f} s")
    f = window()
    analytics_postgres.check_equal(url, f.start, f.end, clickhouse["answers"])
    log("postgres: open now, backlog, created per day and first responses equal ClickHouse's")
    timings = time_queries("postgres", analytics_postgres.runner(url, f.start, f.end), args.repeat)
    return {"tickets": tickets, "messages": messages, "load_seconds": load, "timings": timings}


def versus(postgres: dict[str, Any] | None, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """PostgreSQL's p95 per query beside the slower ClickHouse adapter's, and the ratio."""
    rows = []
    for query, samples in (postgres or {}).get("timings", {}).items():
        pg = percentile(samples, 95)
        ch = max(percentile(r["timings"][query], 95) for r in runs.values())
        rows.append([query, percentile(samples, 50), pg, ch, pg / ch, pg / ch >= 10])
    return table(
        "PostgreSQL from the read models against ClickHouse (p95, the slower adapter)",
        [column("dashboard query"), column("PostgreSQL p50 ms", ".1f"),
         column("PostgreSQL p95 ms", ".1f"), column("ClickHouse p95 ms", ".1f"),
         column("PostgreSQL / ClickHouse", "{:.1f}x"), column(">= 10x slower")],
        rows,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="events generated at once")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/deskstream_bench_analytics",
        help="a scratch database (dropped and made again); '' skips PostgreSQL",
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    chdb_dir = BASE_DIR / "var" / "bench-chdb"
    server_dir = BASE_DIR / "var" / "bench-clickhouse"
    for directory in (chdb_dir, server_dir):
        shutil.rmtree(directory, ignore_errors=True)
    started = start_clickhouse(server_dir)
    if started is None:
        raise SystemExit("no clickhouse-server (apt-get install clickhouse-server)")
    url, proc = started
    adapters: dict[str, AnalyticsDatabase] = {
        "chDB 26.9 (in-process)": ChdbDatabase(chdb_dir),
        "ClickHouse 18.16 server": ClickHouseServerDatabase(url, database="bench"),
    }
    models = analytics_postgres.ReadModels() if args.postgres else None
    runs: dict[str, dict[str, Any]] = {}
    try:
        seconds = load_history(adapters, models, args)
        for name, db in adapters.items():
            runs[name] = {"load_seconds": seconds[name], **measure(name.split()[0], db, args)}
    finally:
        close_all()
        proc.terminate()
        proc.wait(60)
        for directory in (chdb_dir, server_dir):
            shutil.rmtree(directory, ignore_errors=True)

    names = list(runs)
    postgres = measure_postgres(args.postgres, models, args, runs[names[-1]]) if models else None
    load = table(
        "Load through the analytics projector (runner and store; generating the events not "
        "included)",
        [column("adapter"), column("events", ",d"), column("seconds", ".1f"),
         column("events/s", ",.0f")],
        [(n, args.events, r["load_seconds"], args.events / r["load_seconds"])
         for n, r in runs.items()],
    )  # fmt: skip
    query_rows = []
    for query in runs[names[0]]["timings"]:
        row: list[Any] = [query]
        for n in names:
            samples = runs[n]["timings"][query]
            row += [percentile(samples, 50), percentile(samples, 95)]
        row.append(all(percentile(runs[n]["timings"][query], 95) < TARGET_MS for n in names))
        query_rows.append(row)
    cols = [column("dashboard query")]
    for n in names:
        cols += [column(f"{n} p50 ms", ".1f"), column(f"{n} p95 ms", ".1f")]
    cols.append(column(f"p95 < {TARGET_MS:.0f} ms on both"))
    doc = results(
        BENCH,
        f"python bench/analytics.py --events {args.events} --repeat {args.repeat}",
        machine(),
        {
            "Events": f"{args.events:,} synthetic ticket events over {DAYS} days, generated "
            f"once in chunks of {args.chunk:,} ({seconds['generate']:.0f} s) and applied to "
            f"both adapters in batches of {args.batch:,}"
            + (f" and folded into read-model rows ({seconds['fold']:.0f} s)" if models else ""),
            "Queries": "the 30 days to the last event, UTC, no filters, each run "
            f"{args.repeat} times after one warm-up",
            "PostgreSQL": (
                f"{postgres['tickets']:,} tickets and {postgres['messages']:,} messages in "
                "read-model tables (rm_ticket, rm_sla, rm_message, their indexes), COPYed in "
                f"{postgres['load_seconds']:.1f} s; status over time and the reopen rate have "
                "no read-model equivalent (no status history)"
                if postgres
                else "not measured (--postgres '')"
            ),
            "Load average": f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
            "end (2 cores shared with other work: absolute numbers are pessimistic)",
        },
        [load, table("Dashboard queries", cols, query_rows), versus(postgres, runs)],
    )
    publish(doc, write=not args.no_docs)


if __name__ == "__main__":
    main()
