"""``scripts/with_services.py`` stops with an error when Redis cannot be reached, instead of
running the suite without it (and so skipping the Redis contract); it runs without Redis only
when ``DESKSTREAM_TEST_WITHOUT_REDIS=1`` says so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "with_services.py"
PRINT_REDIS = [sys.executable, "-c", "import os; print(os.environ.get('DESKSTREAM_REDIS_URL'))"]


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DESKSTREAM_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--", *PRINT_REDIS],
        # Kafka, S3 and clamd addresses of its own: nothing here needs those servers started.
        env={
            **base,
            "DESKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9",
            "DESKSTREAM_S3_ENDPOINT": "http://127.0.0.1:9",
            "DESKSTREAM_CLAMD_ADDRESS": "127.0.0.1:9",
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_redis_stops_the_run_before_the_command() -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    done = run({"DESKSTREAM_REDIS_URL": url})
    assert done.returncode == 2
    assert f"DESKSTREAM_REDIS_URL={url} does not answer PING" in done.stderr
    assert url not in done.stdout  # the command never ran


def test_a_redis_that_answers_is_handed_to_the_command() -> None:
    url = os.environ.get("DESKSTREAM_REDIS_URL") or "redis://127.0.0.1:6379/0"
    done = run({"DESKSTREAM_REDIS_URL": url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == url


def test_a_declared_absence_runs_the_command_without_redis() -> None:
    done = run({"DESKSTREAM_TEST_WITHOUT_REDIS": "1"})
    assert done.returncode == 0, done.stderr
    assert "DESKSTREAM_TEST_WITHOUT_REDIS=1" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "None"
