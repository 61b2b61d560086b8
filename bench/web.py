"""Web app budget: the first page's gzipped bundle, and frame timings while scrolling a list of
1,000 tickets in headless Chromium.

1. Builds ``web/dist`` if stale and reads its first-page chunks (``web/scripts/bundle-budget.mjs``).
2. Creates the database ``deskstream_bench_web`` (``benchlib.start_database``: on the server
   of ``DATABASE_URL`` or :5432, else an embedded server under ``var/bench-web-pg``),
   migrates, starts the server (uvicorn serving the API and
   the web app, projectors in its threads) and opens 1,000 tickets for one customer over HTTP.
3. Signs that customer in through the sign-in page, opens "My tickets", scrolls until all
   1,000 are loaded (pages of 50, infinite scroll), then scrolls the virtualised list from top
   to bottom at a fixed speed in ``requestAnimationFrame`` and records every frame interval.
4. Writes ``bench/results/web.json``, renders its section of ``docs/benchmarks.md`` from it
   and stops everything it started, by PID.

Usage: ``make bench-web`` (or ``.venv/bin/python bench/web.py [--tickets N]``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.benchlib import (
    BASE_DIR,
    AppServer,
    Database,
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

BENCH = "web"
DB_NAME = "deskstream_bench_web"
PG_DIR = BASE_DIR / "var" / "bench-web-pg"
CHROMIUM = os.environ.get("DESKSTREAM_CHROMIUM", "/usr/bin/chromium")
SCROLL_PX_PER_FRAME = 60


def bundle() -> dict[str, Any]:
    from infra.server.webapp import WEB_DIR, ensure_built

    problem = ensure_built()
    if problem:
        raise SystemExit(problem)
    out = subprocess.run(
        ["node", "scripts/bundle-budget.mjs", "--json"],
        cwd=WEB_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def start_server(db: Database) -> AppServer:
    env = {
        "DATABASE_URL": db.url,
        "DESKSTREAM_DEMO": "1",
        "DESKSTREAM_RATE_LIMITS": "0",  # one address, many clients: not what limits are for
        "DESKSTREAM_COOKIE_SECURE": "0",  # plain HTTP on 127.0.0.1 (ADR 0033)
        "DESKSTREAM_PROJECTORS_IN_PROCESS": "1",
        "DESKSTREAM_AUTO_ASSIGN": "0",
        "DESKSTREAM_CELERY_EAGER": "1",
        "DESKSTREAM_EMAIL_OUTBOX_DIR": str(BASE_DIR / "var" / "bench-web-outbox"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(migrate, cwd=BASE_DIR, env={**os.environ, **env}, check=True)
    server = AppServer(
        BASE_DIR / "var" / "bench-web" / "server.log",
        env,
        cmd=[sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", "{port}", "--lifespan", "off", "--log-level", "warning"],
    )  # fmt: skip
    try:
        server.wait_ready("/api/auth/providers", timeout=60)
    except Exception:
        server.stop()
        raise
    return server


def open_tickets(url: str, email: str, count: int) -> float:
    token = httpx.post(f"{url}/api/auth/demo-login", json={"email": email}).json()["access"]
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:

        def one(i: int) -> int:
            # A customer's tickets: priority is staff's (unless an admin lets customers set it).
            body = {"subject": f"Bench ticket {i:04d}", "description": "Scrolling benchmark"}
            return http.post("/api/tickets", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(count)))
    assert codes.count(201) == count, {c: codes.count(c) for c in set(codes)}
    return time.monotonic() - started


SCROLL_SCRIPT = """async (pxPerFrame) => {
  const list = document.querySelector('[data-testid="ticket-list"]');
  list.scrollTop = 0;
  await new Promise((r) => setTimeout(r, 300));
  const deltas = [];
  let rows = 0;
  return await new Promise((resolve) => {
    let last = performance.now();
    const step = (now) => {
      deltas.push(now - last);
      last = now;
      rows = Math.max(rows, list.querySelectorAll('[role="listitem"]').length);
      const max = list.scrollHeight - list.clientHeight;
      if (list.scrollTop >= max) {
        return resolve({ deltas: deltas.slice(1), rows, height: list.scrollHeight });
      }
      list.scrollTop = Math.min(max, list.scrollTop + pxPerFrame);
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
}"""


def measure(url: str, email: str, count: int) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        started = time.monotonic()
        page.goto(url + "/")
        page.get_by_label("E-mail").fill(email)
        page.get_by_role("button", name="Sign in", exact=True).click()
        listing = page.get_by_test_id("ticket-list")
        expect(listing).to_be_visible(timeout=60_000)
        first_list = time.monotonic() - started
        # Infinite scroll: keep going to the end until every page is loaded.
        while not page.get_by_text(f"{count} tickets", exact=True).is_visible():
            listing.evaluate("el => { el.scrollTop = el.scrollHeight; }")
            page.wait_for_timeout(150)
        loaded = time.monotonic() - started
        result = page.evaluate(SCROLL_SCRIPT, SCROLL_PX_PER_FRAME)
        browser.close()
    deltas = [float(d) for d in result["deltas"]]
    return {
        "first_list_s": first_list,
        "all_loaded_s": loaded,
        "frames": len(deltas),
        "p50": percentile(deltas, 50),
        "p95": percentile(deltas, 95),
        "p99": percentile(deltas, 99),
        "max": max(deltas),
        "over_33": sum(d > 33.4 for d in deltas),
        "over_50": sum(d > 50 for d in deltas),
        "fps": 1000 * len(deltas) / sum(deltas),
        "rows": result["rows"],
        "height": result["height"],
    }


def build_results(
    b: dict[str, Any], m: dict[str, Any], count: int, db: Database, create_s: float
) -> dict[str, Any]:
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    kb = 1000
    files = [(f, "first page") for f in b["first_page"]] + [(f, "on demand") for f in b["lazy"]]
    total = b["first_page_gzip_bytes"] / kb
    budget = b["budget_gzip_bytes"] / kb
    setup = {
        "Browser": f"{version.stdout.strip() or 'chromium'} headless (`--disable-gpu`: "
        "software rendering)",
        "PostgreSQL": f"{db.version} ({db.kind})",
        "Server": "one uvicorn process serving the API and the web app, projectors in its threads",
    }
    return results(
        BENCH,
        "make bench-web",
        machine(),
        setup,
        [
            table(
                "Bundle (production build, gzip level 9)",
                [
                    column("File"),
                    column("Loads"),
                    column("raw kB", ".1f"),
                    column("gzip kB", ".1f"),
                ],
                [[f"`{f['file']}`", when, f["bytes"] / kb, f["gzip"] / kb] for f, when in files],
            ),
            table(
                "First page against the budget",
                [
                    column("First page gzip kB", ".1f"),
                    column("Budget kB", ".0f"),
                    column("Within?"),
                ],
                [[total, budget, total <= budget]],
            ),
            table(
                f"Scrolling {count:,} tickets",
                [
                    column("Tickets", ",d"),
                    column("Opened over HTTP in s", ".1f"),
                    column("First rows after s", ".1f"),
                    column("All loaded after s", ".1f"),
                    column("Most rows in the DOM", "d"),
                    column("List height px", ",d"),
                    column("Scroll px per frame", "d"),
                ],
                [
                    [
                        count,
                        create_s,
                        m["first_list_s"],
                        m["all_loaded_s"],
                        m["rows"],
                        m["height"],
                        SCROLL_PX_PER_FRAME,
                    ]
                ],
            ),
            table(
                "Frame intervals while scrolling",
                [
                    column("Frames", ",d"),
                    column("Frames/s", ".1f"),
                    column("p50 ms", ".1f"),
                    column("p95 ms", ".1f"),
                    column("p99 ms", ".1f"),
                    column("max ms", ".1f"),
                    column("Frames > 33 ms", "d"),
                    column("> 50 ms", "d"),
                ],
                [
                    [
                        m["frames"],
                        m["fps"],
                        m["p50"],
                        m["p95"],
                        m["p99"],
                        m["max"],
                        m["over_33"],
                        m["over_50"],
                    ]
                ],
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args()
    log("building the web app and measuring its bundle")
    b = bundle()
    db = start_database(DB_NAME, pg_dir=PG_DIR)
    try:
        server = start_server(db)
        try:
            email = f"bench-{int(time.time())}@example.test"
            log(f"opening {args.tickets} tickets")
            create_s = open_tickets(server.base, email, args.tickets)
            log("scrolling in Chromium")
            m = measure(server.base, email, args.tickets)
        finally:
            server.stop()
    finally:
        stop_database(db)
    publish(build_results(b, m, args.tickets, db, create_s), write=not args.no_write)
    log(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in m.items()}))
    log(f"first page {b['first_page_gzip_bytes'] / 1000:.1f} kB gzip")


if __name__ == "__main__":
    main()
