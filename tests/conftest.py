"""Shared fixtures: users with roles, access tokens, a real ASGI server for e2e tests, and an
OpenAI-compatible server on 127.0.0.1 for the AI drafts (``fake_openai``).

The database is the PostgreSQL that ``scripts/with_services.py`` found or started
(``DATABASE_URL``); pytest-django creates ``test_deskstream`` on it, and the event store is
configured from that same test database.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.server.launcher import HTTP_PROTOCOL  # the servers speak HTTP as make run's does

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)
# E-mail notifications in test processes (and the servers they start): Celery tasks run
# eagerly, since no worker listens on the shared Redis, and mail goes to a temporary outbox,
# never to var/outbox. Tests that need a real worker or SMTP server start their own.
os.environ.setdefault("DESKSTREAM_CELERY_EAGER", "1")
# Automatic assignment would hand every new ticket to any online test agent: tests of other
# features run without it, in this process (settings) and in the servers they start (here).
# The automation tests switch it on (settings.AUTO_ASSIGN, or DESKSTREAM_AUTO_ASSIGN=1).
os.environ.setdefault("DESKSTREAM_AUTO_ASSIGN", "0")
# Rate limits count per IP address, and every client of the suite is 127.0.0.1: they are off
# in test processes and the servers they start, and on where the tests of the limits need
# them (settings.RATE_LIMITS, or DESKSTREAM_RATE_LIMITS=1 for a server).
os.environ.setdefault("DESKSTREAM_RATE_LIMITS", "0")
# AI drafts are written in the request (eager), not in a thread after it: the tests read the
# finished draft from the answer; test_drafts_api.py checks the thread that make run uses.
os.environ.setdefault("DESKSTREAM_DRAFTS_IN_THREADS", "0")
# Channel groups and presence keys on the shared Redis: a prefix of this test session's own,
# so servers of an earlier run (or of another clone on the same test database name) never
# share streams or presence with this one.
os.environ.setdefault("DESKSTREAM_CHANNELS_PREFIX", f"deskstream.test.{uuid.uuid4().hex[:12]}.")
# Analytics: chDB allows one data directory per process and one process per directory. The
# test process gets a directory of its own; the servers tests start run without the analytics
# projector unless a test switches it on (DESKSTREAM_ANALYTICS=1, with its own directory).
os.environ.setdefault("DESKSTREAM_ANALYTICS", "0")
os.environ.setdefault(
    "DESKSTREAM_ANALYTICS_PATH", str(ROOT / "var" / f"test-chdb-{uuid.uuid4().hex[:12]}")
)
# OpenSearch: the product takes a server that needs over 5 s for a request for down. The
# suite's osmem-server, on two cores shared with three test workers, has needed longer for a
# bulk with refresh=wait_for (a clean-clone run, 2026-12-07): test processes and the servers
# they start allow 30 s. Tests of a stopped server set 1 s themselves; the fault run keeps 5.
os.environ.setdefault("DESKSTREAM_OPENSEARCH_TIMEOUT", "30")
from django.conf import settings as _loaded  # noqa: E402 - read before this file ran

_loaded.OPENSEARCH_TIMEOUT = float(os.environ["DESKSTREAM_OPENSEARCH_TIMEOUT"])
# Under pytest-xdist (`make test` runs two workers) each worker is a test session of its own:
# the workers inherit the values above from the controller, so each gets its own channel
# prefix and chDB directory here; pytest-django gives each its own test database
# (test_deskstream_gw0, ...), which the servers a worker starts use too.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER and not os.environ.get("DESKSTREAM_TEST_WORKER_ISOLATED"):
    os.environ["DESKSTREAM_TEST_WORKER_ISOLATED"] = XDIST_WORKER
    os.environ["DESKSTREAM_CHANNELS_PREFIX"] += f"{XDIST_WORKER}."
    os.environ["DESKSTREAM_ANALYTICS_PATH"] += f"-{XDIST_WORKER}"
    # pytest-django loaded the settings before this file, from the environment the worker
    # inherited: this process's own channel layer, presence, rate limits and chDB directory
    # would be every worker's. They get the worker's suffix too.
    from django.conf import settings as _settings

    _settings.CHANNELS_PREFIX += f"{XDIST_WORKER}."
    _layer = _settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    if "prefix" in _layer:
        _layer["prefix"] = _settings.CHANNELS_PREFIX
    _settings.ANALYTICS_PATH += f"-{XDIST_WORKER}"


@pytest.fixture(scope="session", autouse=True)
def _test_mail_outbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from django.conf import settings

    path = tmp_path_factory.mktemp("mail-outbox")
    os.environ["DESKSTREAM_EMAIL_OUTBOX_DIR"] = str(path)
    settings.EMAIL_OUTBOX_DIR = str(path)
    return path


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """The test database, always (pytest-django's own fixture creates it only when a collected
    test uses ``db``: a run of e2e tests alone, whose servers are subprocesses, would point
    them at the development database). At the end, close the event store's connection pool
    before the test database is dropped (open connections would block the DROP)."""
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=verbosity, interactive=False, aliases={"default"})
        _users_from_a_million()
    yield
    from command_api.application import close_application

    close_application()
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=verbosity)


def _users_from_a_million() -> None:
    """Real users get ids from 1,000,000 on. Tests of the domain and the projectors write
    events for made-up people with small ids ("1", "5", "12"); in a fresh test database (a
    worker of ``PYTEST_WORKERS``) a real user created early can get such an id too and, through
    the log those tests left, notifications of tickets that were never theirs (the likely
    cause of an extra notification seen once in test_notifications.py under three workers)."""
    from django.db import connection

    from infra.auth.models import User

    with connection.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [User._meta.db_table])
        (sequence,) = cur.fetchone()
        cur.execute(
            "SELECT setval(%s::regclass, greatest(1000000, nextval(%s::regclass)), false)",
            [sequence, sequence],
        )


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ClickHouse server: ``DESKSTREAM_CLICKHOUSE_URL`` (scripts/with_services.py starts
    one), else one started here for this session (installed with apt-get if missing)."""
    if os.environ.get("DESKSTREAM_CLICKHOUSE_URL"):
        yield os.environ["DESKSTREAM_CLICKHOUSE_URL"]
        return
    from infra.clickhouse.server import start_clickhouse

    started = start_clickhouse(tmp_path_factory.mktemp("clickhouse"))
    if started is None:
        pytest.fail("no clickhouse-server, and apt-get could not install it")
    url, proc = started
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="session", autouse=True)
def _test_chdb() -> Iterator[None]:
    """This test process's chDB directory (settings are read before this module sets the
    environment, so they are set here too), removed at the end."""
    import shutil

    from django.conf import settings

    path = Path(os.environ["DESKSTREAM_ANALYTICS_PATH"])
    settings.ANALYTICS_PATH = str(path)
    settings.ANALYTICS = False
    yield
    from infra.clickhouse.connect import close

    close()  # chDB's engine before interpreter teardown: left to it, the process crashes
    if path.name.startswith("test-chdb-"):
        shutil.rmtree(path, ignore_errors=True)


def create_user(role: str = "customer", email: str | None = None, **extra: Any) -> Any:
    from domain.agent import agent_id_for_user
    from infra.auth.models import AgentProfile, CustomerProfile, User

    n = next(_counter)
    email = email or f"{role}{n}-{time.monotonic_ns()}@example.test"
    user = User.objects.create(username=email, email=email, role=role, first_name=f"{role}{n}")
    if role == "customer":
        CustomerProfile.objects.create(user=user, **extra)
    elif role == "agent":
        AgentProfile.objects.create(user=user, agent_id=agent_id_for_user(str(user.pk)))
    return user


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    return create_user


@pytest.fixture
def token_for() -> Callable[[Any], str]:
    from infra.auth.tokens import start_session

    return lambda user: start_session(user).access


def project_all() -> None:
    """Run every projector until it has applied everything stored so far."""
    from config.bootstrap import STORES, runner

    for name in STORES:
        runner(name).catch_up()


@pytest.fixture
def api(make_user: Callable[..., Any], token_for: Callable[[Any], str]) -> Callable[..., Any]:
    """``api(role)`` -> (user, DRF APIClient authenticated as that user).

    The client brings the projections up to date before every GET, the way a browser's
    read would pass ``?after=<position>`` (tested on its own in the read-API tests).
    """
    from rest_framework.test import APIClient

    class ProjectingAPIClient(APIClient):
        def get(self, *args: Any, **kwargs: Any) -> Any:
            project_all()
            return super().get(*args, **kwargs)

    def make(role: str = "customer", user: Any = None) -> tuple[Any, APIClient]:
        user = user or make_user(role)
        client = ProjectingAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return user, client

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_database_url() -> str:
    """The URL of the test database, for servers and projectors run as subprocesses."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}&port={db['PORT']}"
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.proc = proc

    def stop(self) -> None:
        """SIGTERM (the projectors finish their batch), then SIGKILL if it hangs."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Idle connections retire before uvicorn's 5 s keep-alive closes them, so a request
        # never goes out on a connection the server is closing (a reset).
        kwargs.setdefault("limits", httpx.Limits(keepalive_expiry=2.0))
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


def start_server(extra_env: dict[str, str] | None = None, port: int | None = None) -> LiveServer:
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DESKSTREAM_DEMO": "1",
        "DESKSTREAM_PROJECTORS_IN_PROCESS": "1",
        # Smaller pools than production: several servers and projector processes of the suite
        # run at once against one PostgreSQL (100 connections on a stock server).
        "DESKSTREAM_DB_POOL_SIZE": "10",
        # Plain HTTP on 127.0.0.1: the refresh cookie must not be Secure (ADR 0033).
        "DESKSTREAM_COOKIE_SECURE": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **(extra_env or {}),
    }
    env.pop("PYTEST_VERSION", None)
    # DESKSTREAM_TEST_SERVER_LOGS=DIR: each server's output to a file of its own there (the
    # default leaves it to pytest's capture, which shows it beside whichever test ran then).
    logs = os.environ.get("DESKSTREAM_TEST_SERVER_LOGS")
    output = None
    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
        name = f"server-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{port}.log"
        output = (Path(logs) / name).open("ab")
        output.write(f"# for {os.environ.get('PYTEST_CURRENT_TEST')}\n".encode())
        output.flush()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--http",
            HTTP_PROTOCOL,
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
    )
    if output is not None:
        output.close()  # the server holds its own copy
    url = f"http://127.0.0.1:{port}"
    # Generous by default: on a busy 2-core machine (two test workers, other users) the
    # start-up alone has taken over 30 s; DESKSTREAM_TEST_SERVER_WAIT seconds if set.
    wait = float(os.environ.get("DESKSTREAM_TEST_SERVER_WAIT", "90"))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"server did not start in {wait:g} s")
    if env.get("DESKSTREAM_PROJECTORS_IN_PROCESS") == "1":
        wait_caught_up(url, proc, time.monotonic() + wait)
    return LiveServer(url, proc)


def wait_caught_up(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the server's projectors have applied the whole log (``/readyz``). The test
    database keeps every event earlier tests appended, and a server that starts where the
    last one of its database stopped may have thousands to apply: a test that waits on an
    unread count or a toast must not count that catching up against its own timeout.

    ``deadline`` is pushed on while the projectors move (a loaded machine's notifications
    projector, delivering each e-mail of the backlog, has needed minutes): it fails when
    nothing has moved for as long as it first allowed, or after ten minutes in all."""
    body: dict[str, Any] = {}
    patience = max(deadline - time.monotonic(), 1.0)
    cap = time.monotonic() + 600
    moved: tuple[int, ...] = ()
    while time.monotonic() < min(deadline, cap):
        try:
            body = httpx.get(f"{url}/readyz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            body = {}
        projectors = body.get("projectors", {}).values()
        lags = [p["lag"] for p in projectors if p.get("lag") is not None]
        if lags and max(lags) == 0:
            return
        positions = tuple(int(p.get("position") or 0) for p in projectors)
        if positions != moved:
            moved = positions
            deadline = time.monotonic() + patience
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server's projectors did not catch up: {body}")


@pytest.fixture(scope="module")
def live_api(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveServer]:
    """uvicorn serving ``config.asgi`` on the test database, as ``make run`` serves it. One
    per test file: a server lives no longer than the file that uses it, so its projectors
    never feed the tables of a later file's tests (the feed and Kafka tests refuse a second
    feeder; a flush between transactional tests would wait on its reads)."""
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def dependencies() -> Iterator[Callable[..., None]]:
    """Swap the composition root's dependencies (clock, e-mail sender, how assignments are
    issued) for one test: ``dependencies(clock=lambda: ...)``; restored afterwards."""
    from config import bootstrap

    with contextlib.ExitStack() as stack:

        def use(**changes: Any) -> None:
            stack.enter_context(bootstrap.overridden(**changes))

        yield use


@pytest.fixture(scope="session")
def _openai_server() -> Iterator[Any]:
    from tests.fakes.openai_server import FakeOpenAIServer

    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_openai_server: Any) -> Iterator[Any]:
    """The OpenAI-compatible server of the session, its script and records reset."""
    _openai_server.reset()
    yield _openai_server
    _openai_server.reset()
