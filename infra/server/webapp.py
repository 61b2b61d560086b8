"""The web app (``web/``): build it when its sources changed, and answer its client routes.

WhiteNoise serves the built files (``settings.WHITENOISE_ROOT`` is ``web/dist``); this
module answers ``index.html`` for ``/`` and every client-side route (``/tickets/<id>``,
``/agent``, ...), and rebuilds ``web/dist`` with npm when ``make run`` or the browser tests
find it missing or older than its sources.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
# What the build reads: a change to any of these makes web/dist stale.
SOURCES = ("src", "public", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json")

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Deskstream</title></head><body style="font-family: sans-serif; margin: 2rem">
<h1>Deskstream</h1><p>The web app is not built. Install Node.js 20+ and npm, then run
<code>make run</code> again (it builds <code>web/dist</code>), or build it by hand:
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>.</p>
<p>The API is up: <a href="/api/docs/">/api/docs/</a>.</p></body></html>"""


# The app's client-side routes (web/src/app/App.tsx). Any other path still gets the app's
# shell, which shows its "Page not found" page, but with HTTP 404, so crawlers, monitors and
# link checkers see a missing page as missing. Sections whose pages live under one prefix
# (the admin area, analytics) are matched by the prefix.
CLIENT_ROUTES = re.compile(
    r"^/(?:"
    r"|tickets/?|tickets/[0-9a-fA-F-]{36}(?:/history)?/?"
    r"|agent/?|search/?|macros/?|rate/?"
    r"|(?:admin|analytics|dashboard)(?:/[\w.-]*)*/?"
    r")$"
)


def spa_index(request: HttpRequest) -> HttpResponse:
    """``index.html`` of the built app, never cached (it names the hashed assets); 404 for a
    path that is none of the app's routes."""
    index = Path(settings.WEB_DIST) / "index.html"
    if not index.is_file():
        return HttpResponse(NOT_BUILT, status=503, content_type="text/html; charset=utf-8")
    status = 200 if CLIENT_ROUTES.match(request.path) else 404
    response = HttpResponse(
        index.read_bytes(), status=status, content_type="text/html; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    return response


def _newest_mtime(paths: Iterable[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_dir():
            newest = max(newest, _newest_mtime(path.iterdir()))
        elif path.exists():
            newest = max(newest, path.stat().st_mtime)
    return newest


def is_stale(web_dir: Path = WEB_DIR) -> bool:
    index = web_dir / "dist" / "index.html"
    if not index.is_file():
        return True
    return _newest_mtime(web_dir / name for name in SOURCES) > index.stat().st_mtime


def ensure_built(web_dir: Path = WEB_DIR) -> str | None:
    """Build ``web/dist`` if it is missing or stale. Returns None when the build is current,
    or a sentence saying why the app could not be built (no npm, or the build failed)."""
    if not is_stale(web_dir):
        return None
    # One build at a time (several test workers, or make run beside a test run): the others
    # wait for it, then find the build current.
    with (web_dir / ".build.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not is_stale(web_dir):
            return None
        return _build(web_dir)


def _build(web_dir: Path) -> str | None:
    npm = shutil.which("npm")
    if npm is None:
        return "npm was not found: install Node.js 20+ to build the web app (the API still runs)."
    lock = web_dir / "package-lock.json"
    installed = web_dir / "node_modules" / ".package-lock.json"
    commands = []
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        commands.append([npm, "ci", "--no-audit", "--no-fund"])
    commands.append([npm, "run", "build"])
    for command in commands:
        print(f"web: {' '.join(command[1:])} ...", flush=True)  # noqa: T201
        done = subprocess.run(command, cwd=web_dir, check=False)  # noqa: S603
        if done.returncode != 0:
            return f"`npm {' '.join(command[1:])}` failed in {web_dir} (exit {done.returncode})."
    return None
