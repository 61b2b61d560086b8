"""Analytics the way ``make run`` runs them (ADRs 0030 and 0035): the launcher's projector
process owns the chDB directory and runs the analytics projector beside the others, and the
web server reads the dashboard through its socket; ``manage.py projector rebuild analytics``
refuses while it runs and works once it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, free_port, subprocess_database_url, wait_caught_up
from tests.e2e.test_launcher import projector_children, wait_for


@pytest.fixture
def chdb_env(django_db_setup: Any, tmp_path: Path) -> dict[str, str]:
    from django.conf import settings

    env = {
        "DESKSTREAM_SECRET_KEY": settings.SECRET_KEY,
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DESKSTREAM_EMAIL_OUTBOX": "0",
        "DESKSTREAM_ANALYTICS": "1",
        "DESKSTREAM_ANALYTICS_PATH": str(tmp_path / "analytics"),
    }
    for name in ("PYTEST_VERSION", "DESKSTREAM_PROJECTORS_IN_PROCESS", "DESKSTREAM_CLICKHOUSE_URL"):
        env.pop(name, None)
    return env


@pytest.fixture
def launcher(chdb_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.server.launcher", "--port", str(port), "--no-demo"],
        cwd=ROOT,
        env=chdb_env,
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
        # The worker's test database holds every event earlier files appended: the projector
        # process applies them all (analytics on chDB too) before this test's own count.
        wait_caught_up(url, proc, time.monotonic() + 180)

        def analytics_caught_up() -> bool:
            projectors = httpx.get(f"{url}/readyz", timeout=5).json().get("projectors", {})
            return projectors.get("analytics", {}).get("lag") == 0

        wait_for(analytics_caught_up, 180)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_projector_process_owns_chdb_the_web_server_reads_it_and_rebuild_waits(
    launcher: tuple[subprocess.Popen[bytes], str],
    chdb_env: dict[str, str],
    e2e_user: Callable[..., Any],
    e2e_token: Callable[[Any], str],
) -> None:
    proc, url = launcher
    assert len(projector_children(proc)) == 1  # the other projectors' process runs too
    admin = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {e2e_token(e2e_user('admin'))}"}
    )
    # Tags are staff's: an agent opens the ticket on a customer's behalf.
    agent = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {e2e_token(e2e_user('agent'))}"}
    )
    customer_user = e2e_user()
    customer_id = customer_user.pk
    customer = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {e2e_token(customer_user)}"}
    )
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    opened = agent.post(
        "/api/tickets",
        json={"subject": "Live", "description": "d", "tags": [tag], "customer_id": customer_id},
    )
    assert opened.status_code == 201, opened.text
    position = opened.json()["position"]

    def counted() -> int | None:
        r = admin.get("/api/analytics/open", params={"tag": tag, "after": position}, timeout=10)
        if r.status_code == 503 and r.json()["error"] == "analytics_unavailable":
            return None  # the projector process, which owns chDB, is still starting
        assert r.status_code == 200, r.text
        return int(r.json()["data"]["open"])

    assert wait_for(counted, 60) == 1
    assert customer.get("/api/analytics/open").status_code == 403

    # The directory is the projector process's while it runs: a rebuild says so and changes
    # nothing.
    refused = manage(chdb_env, "projector", "rebuild", "analytics")
    assert refused.returncode != 0
    assert "Stop `make run` first" in refused.stderr
    assert "in use" in manage(chdb_env, "projector", "status").stdout

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0

    rebuilt = manage(chdb_env, "projector", "rebuild", "analytics", "--batch-size", "50")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuild analytics" in rebuilt.stdout  # the progress bar's label
    assert "analytics rebuilt and swapped in at position" in rebuilt.stdout
    status = manage(chdb_env, "projector", "status")
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if "│ analytics" in row)
    cells = [cell.strip() for cell in line.split("│")]  # projector, source, position, lag, where
    assert cells[4] == "0", line  # lag 0: at the head after the rebuild
