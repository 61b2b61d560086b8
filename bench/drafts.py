"""AI drafts: the service's own work per draft, and how close retrieval drafts come to the
replies that really resolved the tickets.

Run it as ``.venv/bin/python bench/drafts.py [--tickets 20000 --messages 200000]
[--db-url URL] [--keep | --reuse] [--samples 300]``.

1. Its own database (``benchlib.start_database``, ``bench_drafts``), migrated; the history
   made by ``bench/projections.py``'s generator (same vocabulary, same seed: the
   200,000-message corpus by default) with its issue families (``generate(families=True)``:
   each ticket belongs to a family of issues of its topic, which its text mostly names, and
   is mostly resolved with the family's typical reply, with noise), then the ``read_models``
   and ``search`` projections rebuilt from it (the similar-tickets query runs on the search
   projection). Without families every reply came from the same templates whatever the
   ticket said, and no retrieval could do better than a random reply.
2. **The service's own work** for ``--samples`` tickets, stage by stage, as the draft task
   does it (``processes/drafts.py``) with no model: load the ticket (event store), build the
   context (customer, agent, the similar resolved tickets and their replies: the search
   port's ``similar`` on PostgreSQL plus one read-model query), redact and build the prompt
   (what a model would be sent), write the retrieval draft, run the output checks. The
   model's own time and the append of ``DraftGenerated`` are not the service's work.
3. **Retrieval quality**: for ``--samples`` resolved tickets held out (``similar`` never
   returns a ticket itself), the retrieval draft's body against the reply that really
   resolved the ticket: word-level F1 (bag of words, the share of the real reply's words the
   draft has and vice versa) and the normalized Levenshtein similarity (rapidfuzz), with
   the share of tickets that got a draft at all; beside it, in the same run, the baseline of
   a random choice: the mean score of every other held-out ticket's reply. Later changes to
   retrieval compare against these numbers.
4. Writes ``bench/results/drafts.json`` and renders its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BASE_DIR / "bench"]
sys.path.insert(0, str(BASE_DIR))

from bench.benchlib import (  # noqa: E402
    background_cores,
    column,
    git_commit,
    log,
    machine,
    percentile,
    publish,
    results,
    start_database,
    table,
)
from bench.projections import (  # noqa: E402
    PG_SHOW,
    create_people,
    finish,
    generate,
    meta_get,
    meta_put,
    query,
    run_rebuild,
    setup_django,
)

BENCH = "drafts"
DB_NAME = "bench_drafts"
PG_DIR = BASE_DIR / "var" / "bench-drafts-pg"
STAGES = (
    "load ticket",
    "similar resolved tickets (search port + replies)",
    "rest of the context (customer, agent, thread)",
    "redact + prompt",
    "retrieval draft",
    "output checks",
)


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def f1(draft: str, real: str) -> float:
    a, b = Counter(words(draft)), Counter(words(real))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def body_of(draft: str) -> str:
    """The draft without its greeting and sign-off (what retrieval brought)."""
    parts = draft.split("\n\n")
    return "\n\n".join(parts[1:-1]) if len(parts) >= 3 else draft


def pick(sql: str, n: int, seed: int) -> list[UUID]:
    rows = [r[0] for r in query(sql)]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def _same(found: Any, _ticket: UUID, _limit: int) -> Any:
    return found


CPU_ROWS = ("CPU of the whole work (bench + its PostgreSQL backends)", "waiting for a CPU (same)")


def schedstat(pids: list[int]) -> tuple[float, float]:
    """Milliseconds these processes ran on a CPU and waited for one (Linux schedstat, in
    nanoseconds: unlike wall time, the first is what the work costs on a quiet machine)."""
    run = wait = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/schedstat").read_text().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e6, wait / 1e6


def measure_work(ids: list[UUID]) -> dict[str, list[float]]:
    from command_api.application import get_application
    from config import bootstrap
    from domain.draft import Draft
    from infra.llm import prompt
    from infra.llm.drafters import RetrievalDrafter
    from infra.llm.safety import Redactor
    from processes.drafts import SIMILAR_EXAMPLES, build_context, checker

    app = get_application()
    services = bootstrap.draft_services()
    agent = str(query("SELECT user_id FROM rm_agent LIMIT 1")[0][0])
    times: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total", *CPU_ROWS)}
    # The backends of this database (the bench's connections, opened by the warm-up).
    pids = [os.getpid()] + [
        int(r[0])
        for r in query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    ]
    for tid in ids:
        cpu0, wait0 = schedstat(pids)
        t0 = time.perf_counter()
        ticket = app.get_ticket(tid)
        t1 = time.perf_counter()
        similar = services.similar(tid, SIMILAR_EXAMPLES)
        ts = time.perf_counter()
        draft = Draft(UUID(int=0), agent, ticket.version, "en")
        found = dataclasses.replace(services, similar=functools.partial(_same, similar))
        context = build_context(ticket, draft, found)
        t2 = time.perf_counter()
        prompt.build(context, Redactor())
        t3 = time.perf_counter()
        result = RetrievalDrafter().draft(context, lambda _: None)
        t4 = time.perf_counter()
        checker(context, services)(result.text or "")
        t5 = time.perf_counter()
        spans = (t1 - t0, ts - t1, t2 - ts, t3 - t2, t4 - t3, t5 - t4)
        for stage, seconds in zip(STAGES, spans, strict=True):
            times[stage].append(seconds * 1000)
        times["total"].append((t5 - t0) * 1000)
        cpu1, wait1 = schedstat(pids)
        times[CPU_ROWS[0]].append(cpu1 - cpu0)
        times[CPU_ROWS[1]].append(wait1 - wait0)
    return times


def measure_quality(ids: list[UUID]) -> dict[str, float]:
    from rapidfuzz.distance import Levenshtein

    from command_api.application import get_application
    from config import bootstrap
    from domain.draft import Draft
    from infra.llm.drafters import RetrievalDrafter, adapt
    from infra.postgres.readmodels import resolving_replies
    from processes.drafts import build_context

    app = get_application()
    services = bootstrap.draft_services()
    real = resolving_replies(ids)
    truths = {tid: adapt(real[tid][2], old_customer="", customer="") for tid in ids if tid in real}
    scores: dict[str, list[float]] = {"f1": [], "lev": [], "base_f1": [], "base_lev": []}
    drafted = 0
    for tid, truth in truths.items():
        ticket = app.get_ticket(tid)
        context = build_context(ticket, Draft(UUID(int=0), "bench", ticket.version, "en"), services)
        result = RetrievalDrafter().draft(context, lambda _: None)
        # What a random choice scores: the mean over every other held-out ticket's reply.
        others = [other for o, other in truths.items() if o != tid] or [truth]
        scores["base_f1"].append(sum(f1(other, truth) for other in others) / len(others))
        scores["base_lev"].append(
            sum(Levenshtein.normalized_similarity(other, truth) for other in others) / len(others)
        )
        text = body_of(result.text) if result.text else ""
        drafted += bool(text)
        scores["f1"].append(f1(text, truth))
        scores["lev"].append(Levenshtein.normalized_similarity(text, truth) if text else 0.0)
    n = len(scores["f1"]) or 1
    return {
        "held_out": len(scores["f1"]),
        "drafted": drafted / n,
        **{k: sum(v) / (len(v) or 1) for k, v in scores.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--db-url", help="use this database as it is (never dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept corpus")
    parser.add_argument("--save-events", type=int, default=3000)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    if args.reuse:
        args.keep = True
    db = start_database(DB_NAME, db_url=args.db_url, pg_dir=PG_DIR, reuse=args.reuse, show=PG_SHOW)
    try:
        setup_django(db)
        from command_api.application import get_application

        app = get_application()
        params = {
            "tickets": args.tickets,
            "messages": args.messages,
            "seed": args.seed,
            "generator": "families-2",  # bumped when the generator changes what it makes
        }
        if meta_get("drafts_corpus") != params:
            if query("SELECT count(*) FROM deskstream_events")[0][0]:
                raise SystemExit("the database has another corpus; give an empty one")
            log(f"generating {args.tickets:,} tickets with {args.messages:,} messages")
            rng = random.Random(args.seed)
            people = create_people(
                max(50, args.tickets // 10), max(5, min(40, args.tickets // 800)), rng
            )
            stats = generate(
                app, people, args.tickets, args.messages, args.seed, args, families=True
            )
            log(f"generated {stats.events:,} events in {stats.seconds:.0f} s")
            for name in ("read_models", "search"):
                row = run_rebuild(name, 1000)
                log(f"rebuilt {name}: {row}")
            meta_put("drafts_corpus", params)
        messages = query("SELECT count(*) FROM rm_message")[0][0]
        open_ids = pick("SELECT id FROM rm_ticket WHERE status NOT IN ('resolved', 'closed')",
                        args.samples, args.seed)  # fmt: skip
        resolved_ids = pick("SELECT id FROM rm_ticket WHERE status IN ('resolved', 'closed')",
                            args.samples, args.seed + 1)  # fmt: skip
        log(f"{messages:,} messages; measuring {len(open_ids)} drafts")
        measure_work(open_ids[:10])  # warm the caches and connections
        busy = background_cores(2.0)
        times = measure_work(open_ids)
        load = os.getloadavg()[0]
        log(f"scoring retrieval on {len(resolved_ids)} held-out resolved tickets")
        quality = measure_quality(resolved_ids)
    finally:
        with contextlib.suppress(Exception):
            finish(db, args.keep)
    work = table(
        "The service's own work per draft (no model), ms",
        [
            column("Stage"),
            column("n", ","),
            column("p50", ".2f"),
            column("p95", ".2f"),
            column("p99", ".2f"),
        ],
        [
            [stage, len(v), percentile(v, 50), percentile(v, 95), percentile(v, 99)]
            for stage, v in times.items()
        ],
    )
    score = table(
        "Retrieval quality on held-out resolved tickets (higher is closer to the real reply)",
        [column("Drafts from"), column("Word F1", ".3f"), column("Levenshtein similarity", ".3f")],
        [
            ["retrieval (the most similar resolved ticket)", quality["f1"], quality["lev"]],
            [
                "baseline: a random resolved ticket's reply (mean over all the others)",
                quality["base_f1"],
                quality["base_lev"],
            ],
        ],
    )
    setup = {
        "Corpus": f"{args.tickets:,} tickets, {messages:,} messages "
        f"(bench/projections.py's generator, seed {args.seed})",
        "Held out": f"{quality['held_out']} resolved tickets; {quality['drafted']:.0%} got a draft",
        "p95 of the whole work": f"{percentile(times['total'], 95):.1f} ms (target < 100 ms)",
        "Machine": f"{busy:.1f} cores busy just before the measurement (other users); "
        f"load average {load:.1f} at its end",
    }
    info = {**machine(), "commit": git_commit()}
    doc = results(BENCH, "python bench/drafts.py " + " ".join(sys.argv[1:]), info, setup,
                  [work, score])  # fmt: skip
    publish(doc, write=not args.no_doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
