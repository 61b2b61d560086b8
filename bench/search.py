"""Search on both adapters, side by side, on the same corpus: indexing rate, query latency
and write-to-searchable time, PostgreSQL full text against OpenSearch (ADR 0028).

1. Starts PostgreSQL (``benchlib.start_database``) and osmem-server (the OpenSearch-API
   server of the tests; production uses OpenSearch), migrates, creates the customer accounts.
2. Generates one corpus of ticket events in memory (``--tickets``; subjects, descriptions,
   messages, internal notes, status, priority and assignment changes, from a fixed seed).
3. **Indexing**: feeds the events to each adapter's projection store in batches of
   ``--batch`` events, as a catching-up projector does (PostgreSQL: one transaction per
   batch; OpenSearch: one ``_bulk`` per batch, no forced refresh). Documents/s counts the
   documents in the index at the end over the wall time.
4. **Queries**: the same mix of searches on both (one word, two words, a phrase, a filter,
   a customer's own search, a name prefix), ``--rounds`` times each, through the port.
5. **Write to searchable**: ``--probes`` new tickets, each with a word no other has: from
   the start of the projector batch that applies it until a search finds it (polled every
   5 ms). OpenSearch with ``refresh=false`` shows the refresh interval (1 s); with
   ``wait_for`` (the live default) the batch itself waits for it.

Usage: ``python bench/search.py [--tickets 3000] [--rounds 3] [--no-write]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
# Not bench/ itself on the path: bench/kafka.py would stand in for the kafka package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]
sys.path.insert(0, str(BASE_DIR))

from bench.benchlib import (  # noqa: E402
    column,
    git_commit,
    log,
    machine,
    percentile,
    publish,
    results,
    start_database,
    stop_database,
    table,
)

BENCH = "search"
WORDS = [
    "invoice",
    "refund",
    "password",
    "login",
    "export",
    "webhook",
    "dashboard",
    "billing",
    "upload",
    "certificate",
    "timeout",
    "crash",
    "printer",
    "scanner",
    "laptop",
    "battery",
    "screen",
    "keyboard",
    "mouse",
    "network",
    "vpn",
    "wifi",
    "router",
    "firewall",
    "email",
    "calendar",
    "report",
    "chart",
    "backup",
    "restore",
    "sync",
    "account",
    "team",
    "member",
    "charge",
    "plan",
    "vat",
    "number",
    "delay",
    "error",
    "slow",
    "broken",
    "missing",
    "duplicate",
    "access",
    "permission",
    "license",
    "renewal",
    "upgrade",
    "downgrade",
    "invoice",
    "payment",
    "card",
    "bank",
    "transfer",
    "receipt",
    "order",
    "shipping",
    "tracking",
    "parcel",
    "return",
    "exchange",
    "warranty",
    "repair",
    "replacement",
    "manual",
    "setup",
    "install",
    "update",
    "version",
    "release",
    "feature",
    "request",
    "bug",
    "crash",
    "freeze",
    "restart",
    "reset",
    "token",
]
COMMON = ("please", "thanks", "issue", "help", "problem")
FIRST = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
]
LAST = [
    "Archer",
    "Baker",
    "Carter",
    "Dalton",
    "Ellis",
    "Foster",
    "Garcia",
    "Hughes",
    "Irwin",
    "Jensen",
    "Keller",
    "Lopez",
]
COMPANIES = [
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Acme",
    "Soylent",
    "Stark",
    "Wayne",
    "Wonka",
]


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.8 else rng.choice(COMMON) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DESKSTREAM_DEBUG"] = "1"
    os.environ["DESKSTREAM_PROJECTORS_IN_PROCESS"] = "0"
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.DEBUG = False  # no query log
    call_command("migrate", verbosity=0)


def make_customers(n: int, rng: random.Random) -> list[str]:
    from infra.auth.models import CustomerProfile, User

    users = [
        User(
            username=f"bench-customer-{i}",
            email=f"{first.lower()}.{i}@{company.lower()}.example",
            first_name=first,
            last_name=rng.choice(LAST),
            role=User.Role.CUSTOMER,
        )
        for i, (first, company) in enumerate(
            (rng.choice(FIRST), rng.choice(COMPANIES)) for _ in range(n)
        )
    ]
    created = User.objects.bulk_create(users)
    CustomerProfile.objects.bulk_create(
        CustomerProfile(user=u, company=u.email.split("@")[1].split(".")[0].title())
        for u in created
    )
    return [str(u.pk) for u in created]


def corpus(tickets: int, customers: list[str], seed: int) -> list[Any]:
    """The events of ``tickets`` tickets, interleaved as a live desk would store them."""
    from domain.lifecycle import Role
    from domain.ticket import Ticket
    from projections.ports import Envelope

    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    staff: dict[str, Any] = {"actor_id": "agent-1", "actor_role": Role.AGENT}
    positions = itertools.count(1)
    envelopes: list[Any] = []
    open_tickets: list[Ticket] = []

    def take(ticket: Ticket) -> None:
        nonlocal at
        for event in ticket.collect_events():
            at += timedelta(seconds=rng.randint(1, 90))
            stamped = dataclasses.replace(event, timestamp=at)  # type: ignore[type-var]
            envelopes.append(Envelope(next(positions), stamped))

    for _ in range(tickets):
        customer = rng.choice(customers)
        ticket = Ticket.open(
            customer_id=customer,
            subject=sentence(rng, rng.randint(3, 7)),
            description=sentence(rng, rng.randint(10, 60)),
            priority=rng.choice(["low", "medium", "high", "urgent"]),
            tags=rng.sample(["billing", "api", "accounts", "bug", "hardware"], rng.randint(0, 2)),
            actor_id=customer,
            actor_role=Role.CUSTOMER,
        )
        take(ticket)
        open_tickets.append(ticket)
        for _ in range(rng.randint(0, 3)):  # activity on recent tickets
            other = rng.choice(open_tickets[-50:])
            roll = rng.random()
            if roll < 0.6:
                other.post_message(
                    author_id="agent-1",
                    author_role=Role.AGENT,
                    body=sentence(rng, rng.randint(5, 40)),
                    internal=rng.random() < 0.2,
                )
            elif roll < 0.8 and other.assigned_agent_id is None:
                other.assign(agent_id=f"agent-{rng.randint(1, 5)}", **staff)
            else:
                other.change_priority(priority=rng.choice(["low", "high", "urgent"]), **staff)
            take(other)
    return envelopes


@dataclasses.dataclass
class Adapter:
    name: str
    store: Callable[[], Any]  # a projection store (batch() -> apply)
    index: Any  # SearchIndex
    documents: Callable[[], int]


def postgres_adapter() -> Adapter:
    from django.db import connection

    from infra.postgres import search as pg
    from infra.postgres.projection_store import PostgresProjectionStore

    def documents() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM rm_search_doc")
            row = cur.fetchone()
            return int(row[0]) if row else 0

    return Adapter(
        "PostgreSQL",
        lambda: PostgresProjectionStore(
            "search",
            tables=pg.TABLES,
            state_factory=pg.PostgresSearchState,
            handler=pg.handler,
        ),
        pg.PostgresSearchIndex(),
        documents,
    )


def opensearch_adapter(url: str, refresh: str, alias: str) -> Adapter:
    from config.bootstrap import customer_info
    from infra.opensearch import client as os_client
    from infra.opensearch import search as os_search

    client = os_client.client(url, timeout=30)
    store = os_search.OpenSearchSearchStore(client, alias, customer_info, refresh=refresh)

    def documents() -> int:
        client.indices.refresh(index=alias)
        return int(client.count(index=alias)["count"])

    return Adapter(
        f"OpenSearch (osmem, refresh={refresh})",
        lambda: store,
        os_search.OpenSearchSearchIndex(client, alias),
        documents,
    )


def index_all(adapter: Adapter, envelopes: Sequence[Any], batch: int) -> tuple[float, int]:
    started = time.perf_counter()
    store = adapter.store()
    for i in range(0, len(envelopes), batch):
        with store.batch() as b:
            b.apply(envelopes[i : i + batch])
    elapsed = time.perf_counter() - started
    return elapsed, adapter.documents()


def cases(rng: random.Random, customers: list[str], n: int) -> list[tuple[str, Any]]:
    from domain.lifecycle import Role
    from projections.search import Principal, SearchQuery

    agent = Principal(Role.AGENT, "agent-1")
    out: list[tuple[str, Any]] = []
    for _ in range(n):
        kind = rng.choice(["one word", "two words", "phrase", "filtered", "customer", "prefix"])
        a, b = rng.sample(WORDS, 2)
        if kind == "one word":
            q = SearchQuery(a, agent)
        elif kind == "two words":
            q = SearchQuery(f"{a} {b}", agent)
        elif kind == "phrase":
            q = SearchQuery(f'"{a} {b}"', agent)
        elif kind == "filtered":
            q = SearchQuery(a, agent, status=("open",), priority=("high", "urgent"))
        elif kind == "customer":
            q = SearchQuery(a, Principal(Role.CUSTOMER, rng.choice(customers)))
        else:
            q = SearchQuery(rng.choice(FIRST)[:3].lower(), agent, kinds=frozenset({"customer"}))
        out.append((kind, q))
    return out


def time_queries(
    adapter: Adapter, mix: list[tuple[str, Any]], rounds: int
) -> dict[str, list[float]]:
    """Milliseconds per search, by kind of search ("all" too)."""
    for _, q in mix[:10]:  # warm up
        adapter.index.search(q)
    timings: dict[str, list[float]] = {"all": []}
    for _ in range(rounds):
        for kind, q in mix:
            started = time.perf_counter()
            adapter.index.search(q)
            ms = (time.perf_counter() - started) * 1000
            timings["all"].append(ms)
            timings.setdefault(kind, []).append(ms)
    return timings


def write_to_searchable(
    adapter: Adapter, customers: list[str], probes: int, start: int
) -> list[float]:
    from domain.lifecycle import Role
    from domain.ticket import Ticket
    from projections.ports import Envelope
    from projections.search import Principal, SearchQuery

    agent = Principal(Role.AGENT, "agent-1")
    store = adapter.store()
    out = []
    for i in range(probes):
        word = "zq" + uuid.uuid4().hex[:10]
        ticket = Ticket.open(
            customer_id=customers[0],
            subject=f"Probe {word}",
            description="",
            actor_id=customers[0],
            actor_role=Role.CUSTOMER,
        )
        envelopes = [Envelope(start + i, e) for e in ticket.collect_events()]
        started = time.perf_counter()
        with store.batch() as b:
            b.apply(envelopes)
        while adapter.index.search(SearchQuery(word, agent)).group("ticket").count == 0:
            if time.perf_counter() - started > 10:
                raise RuntimeError(f"{adapter.name}: {word} not searchable after 10 s")
            time.sleep(0.005)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument(
        "--embedded-pg", action="store_true", help="the embedded PostgreSQL, even if one runs"
    )
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args()

    from infra.opensearch.osmem import start_osmem

    db = start_database("deskstream_bench_search", embedded_first=args.embedded_pg)
    started = start_osmem()
    if started is None:
        log("osmem-server is not installed (pip install osmem-server)")
        return 1
    url, osmem_proc = started
    try:
        setup_django(db.url)
        rng = random.Random(args.seed)
        customers = make_customers(args.customers, rng)
        log(f"generating {args.tickets} tickets")
        envelopes = corpus(args.tickets, customers, args.seed)
        log(f"{len(envelopes)} events")
        adapters = [
            postgres_adapter(),
            opensearch_adapter(url, "false", "bench-search"),
        ]
        rows_index, rows_query, rows_fresh = [], [], []
        mix = cases(rng, customers, args.queries)
        for adapter in adapters:
            log(f"{adapter.name}: indexing")
            seconds, docs = index_all(adapter, envelopes, args.batch)
            rows_index.append(
                [
                    adapter.name,
                    len(envelopes),
                    docs,
                    seconds,
                    len(envelopes) / seconds,
                    docs / seconds,
                ]
            )
            if adapter.name == "PostgreSQL":
                from django.db import connection

                with connection.cursor() as cur:
                    cur.execute("ANALYZE rm_search_doc")
            log(f"{adapter.name}: queries")
            timings = time_queries(adapter, mix, args.rounds)
            for kind, values in sorted(timings.items(), key=lambda kv: kv[0] != "all"):
                rows_query.append(
                    [adapter.name, kind, len(values)]
                    + [percentile(values, p) for p in (50, 95, 99)]
                    + [max(values)]
                )
        probes_for = [
            adapters[0],
            adapters[1],
            opensearch_adapter(url, "wait_for", "bench-search"),
        ]
        start = len(envelopes) + 1
        for adapter in probes_for:
            log(f"{adapter.name}: write to searchable")
            fresh = write_to_searchable(adapter, customers, args.probes, start)
            start += args.probes + 1
            rows_fresh.append(
                [adapter.name, len(fresh), percentile(fresh, 50), percentile(fresh, 95), max(fresh)]
            )
    finally:
        osmem_proc.terminate()
        osmem_proc.wait(10)
        stop_database(db)

    info = machine()
    info["commit"] = git_commit()
    ms = ",.1f"
    doc = results(
        BENCH,
        "python bench/search.py " + " ".join(sys.argv[1:]),
        info,
        {
            "Corpus": f"{args.tickets:,} tickets, {len(envelopes):,} events, "
            f"{args.customers} customers (seed {args.seed})",
            "OpenSearch": "osmem-server 0.1.6 (in-memory OpenSearch API), refresh interval 1 s",
            "PostgreSQL": db.kind,
            "Batches": f"{args.batch} events per projector batch",
            "Queries": f"{args.queries} searches x {args.rounds} rounds, through the port",
        },
        [
            table(
                "Indexing (targets: >= 5,000 documents/s)",
                [
                    column("adapter"),
                    column("events", ","),
                    column("documents", ","),
                    column("wall s", ",.2f"),
                    column("events/s", ",.0f"),
                    column("documents/s", ",.0f"),
                ],
                rows_index,
            ),
            table(
                "Query latency, ms (target: p95 < 50 ms)",
                [column("adapter"), column("searches"), column("n", ",")]
                + [column(p, ms) for p in ("p50", "p95", "p99", "max")],
                sorted(rows_query, key=lambda r: (r[1] != "all", r[1], r[0])),
            ),
            table(
                "Write to searchable, ms (target: p95 < 2 s; from the projector batch's start)",
                [column("adapter"), column("probes", ",")]
                + [column(p, ms) for p in ("p50", "p95", "max")],
                rows_fresh,
            ),
        ],
    )
    publish(doc, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
