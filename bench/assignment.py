"""Automatic assignment under a burst: time from a ticket's creation to its ``AgentAssigned``.

Run it as ``.venv/bin/python bench/assignment.py [--tickets 1000 --agents 20 --capacity 60]
[--policies least_loaded,round_robin] [--no-docs]``.

For each policy, in a child process with a fresh database of its own (``bench_assign_<policy>``
from ``benchlib.start_database``, dropped afterwards):

1. ``migrate``, the policy set in the admin setting, ``--agents`` agents registered online with
   ``--capacity`` each (no skills, English), the projectors caught up.
2. The projector threads of ``make run`` that matter here run in the process, as in the
   embedded mode: the assignment manager, the read models and the SLA projector.
3. The burst: ``--threads`` threads open ``--tickets`` tickets through the application as fast
   as they can (group commit on), mixed priorities.
4. It waits until every ticket has its ``AgentAssigned``, then reads the log: latency is the
   ``AgentAssigned`` event's time minus the ``TicketOpened`` event's time (both set by the
   aggregate when the command runs, just before its append).
5. Fairness: tickets per agent; with equal agents both policies promise counts within one of
   each other (max - min <= 1).

The parent writes ``bench/results/assignment.json`` and renders its section of
``docs/benchmarks.md`` from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.benchlib import (
    BASE_DIR,
    column,
    log,
    machine,
    percentile,
    publish,
    results,
    start_database,
    stop_database,
    table,
)

BENCH = "assignment"


# ------------------------------------------------------------------------------ child
def child(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DESKSTREAM_DEBUG", "1")
    os.environ["DESKSTREAM_AUTO_ASSIGN"] = "1"
    os.environ["DESKSTREAM_PROJECTORS_IN_PROCESS"] = "0"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from command_api.application import Actor, close_application, get_application
    from config.bootstrap import runner
    from domain.lifecycle import Role
    from infra.automation.models import AssignmentSetting

    call_command("migrate", verbosity=0)
    AssignmentSetting.objects.update_or_create(
        id=1, defaults={"policy": args.policy, "enabled": True}
    )
    app = get_application()
    agents = [str(1000 + i) for i in range(args.agents)]
    for uid in agents:
        app.register_agent(user_id=uid, name=f"Agent {uid}", capacity=args.capacity)
        app.set_agent_availability(uid, "online")
    names = ["assignment", "read_models", "sla"]
    for name in names:
        runner(name).catch_up()

    stop = threading.Event()

    def follow(name: str) -> None:
        r = runner(name)
        try:
            r.run(stop, idle_timeout=0.2)
        finally:
            r.source.close()  # type: ignore[attr-defined]
            connection.close()

    threads = [threading.Thread(target=follow, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    time.sleep(0.5)

    priorities = ["low", "medium", "medium", "high", "urgent"]
    counter = iter(range(args.tickets))
    lock = threading.Lock()
    errors: list[str] = []

    def open_tickets(k: int) -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            customer = f"c{n % 50}"
            try:
                app.open_ticket(
                    Actor(customer, Role.CUSTOMER),
                    customer_id=customer,
                    subject=f"Burst ticket {n}",
                    description="",
                    priority=priorities[n % len(priorities)],
                )
            except Exception as err:  # counted, the bench goes on
                errors.append(repr(err))

    proc = psutil.Process()
    cpu_before = proc.cpu_times()
    started = time.monotonic()
    openers = [threading.Thread(target=open_tickets, args=(k,)) for k in range(args.threads)]
    for t in openers:
        t.start()
    for t in openers:
        t.join()
    created = time.monotonic() - started

    def assigned() -> int:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(DISTINCT originator_id) FROM deskstream_events "
                "WHERE topic = 'deskstream.ticket:AgentAssigned'"
            )
            return int(cur.fetchone()[0])

    deadline = time.monotonic() + args.timeout
    while assigned() < args.tickets - len(errors) and time.monotonic() < deadline:
        time.sleep(0.05)
    done = time.monotonic() - started
    cpu_after = proc.cpu_times()
    stop.set()
    for t in threads:
        t.join(10)

    opened: dict[Any, datetime] = {}
    first_assigned: dict[Any, tuple[datetime, str, str]] = {}
    twice = 0
    source = runner("assignment").source
    after = 0
    while True:
        batch = source.read(after, 5000)
        if not batch:
            break
        for env in batch:
            event = env.event
            kind = type(event).__name__
            if kind == "TicketOpened":
                opened[event.originator_id] = event.timestamp
            elif kind == "AgentAssigned":
                if event.originator_id in first_assigned:
                    twice += 1
                else:
                    first_assigned[event.originator_id] = (
                        event.timestamp,
                        event.agent_id,
                        event.reason,
                    )
        after = batch[-1].position
    source.close()  # type: ignore[attr-defined]
    latencies = [
        (first_assigned[t][0] - at).total_seconds() * 1000
        for t, at in opened.items()
        if t in first_assigned
    ]
    per_agent = Counter(a for _, a, _ in first_assigned.values())
    counts = [per_agent.get(a, 0) for a in agents]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM assignment_decision")
        leftover = int(cur.fetchone()[0])
    sample = next(iter(first_assigned.values()))[2] if first_assigned else ""
    close_application()
    return {
        "policy": args.policy,
        "tickets": len(opened),
        "assigned": len(first_assigned),
        "assigned_twice": twice,
        "errors": len(errors),
        "create_seconds": created,
        "all_assigned_seconds": done,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "per_agent_min": min(counts),
        "per_agent_max": max(counts),
        "over_capacity": sum(1 for c in counts if c > args.capacity),
        "pending_decisions_left": leftover,
        "cpu_seconds": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
        "sample_reason": sample,
    }


# ------------------------------------------------------------------------------ parent
def build_results(
    args: argparse.Namespace, results_: list[dict[str, Any]], postgres: str
) -> dict[str, Any]:
    targets: list[list[Any]] = []
    for r in results_:
        spread = r["per_agent_max"] - r["per_agent_min"]
        targets += [
            [
                f"{r['policy']}: p95 creation → `AgentAssigned` < 1 s",
                f"{r['p95_ms']:,.0f} ms",
                r["p95_ms"] < 1000,
            ],
            [
                f"{r['policy']}: per-agent counts within the fairness bound (max - min <= 1)",
                f"{r['per_agent_min']}-{r['per_agent_max']} (spread {spread})",
                spread <= 1,
            ],
            [
                f"{r['policy']}: no double assignment, nobody over capacity",
                f"{r['assigned_twice']} twice, {r['over_capacity']} over",
                r["assigned_twice"] == 0 and r["over_capacity"] == 0,
            ],
        ]
    setup: dict[str, Any] = {
        "PostgreSQL": postgres,
        "Load": f"a burst of {args.tickets:,} new tickets opened by {args.threads} threads "
        f"through the application (group commit on, priorities mixed); {args.agents} agents "
        f"online with capacity {args.capacity} each; one run per policy on a fresh database",
    }
    if results_:
        setup["A recorded reason"] = f"“{results_[0]['sample_reason']}”"
    ms = ",.0f"
    return results(
        BENCH,
        " ".join([".venv/bin/python bench/assignment.py", *args.argv]),
        machine(),
        setup,
        [
            table(
                "Policies",
                [
                    column("Policy"),
                    column("Tickets", ",d"),
                    column("Assigned", ",d"),
                    column("Twice", "d"),
                    column("Burst created in s", ".2f"),
                    column("All assigned after s", ".2f"),
                    column("p50 ms", ms),
                    column("p95 ms", ms),
                    column("p99 ms", ms),
                    column("max ms", ms),
                    column("Per agent min", "d"),
                    column("Per agent max", "d"),
                    column("Over capacity", "d"),
                    column("CPU s", ".1f"),
                ],
                [
                    [
                        r["policy"],
                        r["tickets"],
                        r["assigned"],
                        r["assigned_twice"],
                        r["create_seconds"],
                        r["all_assigned_seconds"],
                        r["p50_ms"],
                        r["p95_ms"],
                        r["p99_ms"],
                        r["max_ms"],
                        r["per_agent_min"],
                        r["per_agent_max"],
                        r["over_capacity"],
                        r["cpu_seconds"],
                    ]
                    for r in results_
                ],
            ),
            table(
                "Against the targets",
                [column("Target"), column("Measured"), column("Met?")],
                targets,
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=60)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--policies", default="least_loaded,round_robin")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-docs", action="store_true", help="print, do not write results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="least_loaded", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if args.child:
        print(json.dumps(child(args)))
        return
    results_ = []
    postgres = ""
    for policy in args.policies.split(","):
        db = start_database(f"bench_assign_{policy}")
        postgres = f"{db.version} ({db.kind})"
        log(f"{policy}: {args.tickets} tickets, {args.agents} agents, database {db.name}")
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--policy", policy,
                 "--tickets", str(args.tickets), "--agents", str(args.agents),
                 "--capacity", str(args.capacity), "--threads", str(args.threads),
                 "--timeout", str(args.timeout)],
                env={**os.environ, "DATABASE_URL": db.url}, cwd=BASE_DIR, capture_output=True,
                text=True, check=False, timeout=args.timeout + 300,
            )  # fmt: skip
        finally:
            stop_database(db)
        if out.returncode != 0:
            sys.stderr.write(out.stderr[-4000:])
            raise SystemExit(f"{policy}: the child failed ({out.returncode})")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        log(json.dumps(result))
        results_.append(result)
    publish(build_results(args, results_, postgres), write=not args.no_docs)


if __name__ == "__main__":
    main()
