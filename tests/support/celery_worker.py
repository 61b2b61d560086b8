"""A real Celery worker for integration tests: ``celery -A config.celery worker --pool=solo``
on one queue, its output collected line by line, started once it says it is ready."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_worker(queue: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """The worker process and the list its output lines go to (filled while it runs)."""
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config.celery", "worker", "--pool=solo",
            "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "info",
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        pytest.fail("the Celery worker did not start:\n" + "".join(lines[-40:]))
    return proc, lines


def stop_worker(proc: subprocess.Popen[str]) -> None:
    """Warm shutdown (the task at hand finishes), then kill if that hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
