"""``make run``'s launcher: the web server plus the projector process, started and stopped
together (``python -m infra.server.launcher``, on the test database instead of the embedded one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ROOT, free_port, subprocess_database_url


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@contextmanager
def running_launcher(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    from django.conf import settings

    port = free_port()
    env = {
        "DESKSTREAM_SECRET_KEY": settings.SECRET_KEY,  # the tokens the tests sign must verify
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DESKSTREAM_EMAIL_OUTBOX": "0",
    }
    env.pop("PYTEST_VERSION", None)
    env.pop("DESKSTREAM_PROJECTORS_IN_PROCESS", None)
    env.pop("DESKSTREAM_PROJECTORS_MODE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.server.launcher", "--port", str(port), "--no-demo", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, f"the launcher exited with {proc.returncode}"
            # A cheap answer: a first /api/schema/ can take longer than the probe's timeout on a
            # busy machine, and the probe's retries then generated it concurrently (a 500).
            return httpx.get(f"{url}/api/auth/me", timeout=5).status_code == 401

        wait_for(up, 60)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def launcher(django_db_setup: Any) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with running_launcher() as running:
        yield running


def projector_children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "run-all" in " ".join(p.cmdline())
    ]


def test_the_projector_process_builds_the_read_models_the_web_server_serves(
    launcher: tuple[subprocess.Popen[bytes], str],
    e2e_user: Callable[..., Any],
    e2e_token: Callable[[Any], str],
) -> None:
    proc, url = launcher
    assert len(projector_children(proc)) == 1
    client = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {e2e_token(e2e_user())}"}, timeout=10
    )
    opened = client.post("/api/tickets", json={"subject": "Launcher", "description": "d"})
    assert opened.status_code == 201, opened.text
    tid = opened.json()["id"]
    # The web server runs no projector threads here: the read model comes from the child.
    wait_for(lambda: client.get(f"/api/tickets/{tid}").status_code == 200)

    proc.send_signal(signal.SIGTERM)
    child = projector_children(proc)[0]
    assert proc.wait(30) == 0
    child.wait(20)  # stopped with the launcher, not left behind


def test_the_projector_process_stops_when_the_launcher_is_killed(
    launcher: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, _ = launcher
    child = projector_children(proc)[0]
    proc.kill()
    proc.wait(10)
    child.wait(20)  # raises psutil.TimeoutExpired if it outlived the launcher


def test_with_projectors_none_the_launcher_serves_and_starts_no_projector_process(
    django_db_setup: Any,
    e2e_user: Callable[..., Any],
    e2e_token: Callable[[Any], str],
) -> None:
    """docker-compose's web service: the projectors run as services of their own."""
    with running_launcher("--projectors", "none") as (proc, url):
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {e2e_token(e2e_user())}"}, timeout=10
        )
        opened = client.post("/api/tickets", json={"subject": "No projectors", "description": "d"})
        assert opened.status_code == 201, opened.text
        assert psutil.Process(proc.pid).children(recursive=True) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
