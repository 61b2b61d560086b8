"""What every benchmark script needs: ports, the machine and commit it ran on, and its own
section of docs/benchmarks.md (rewritten between the script's markers, others untouched)."""

from __future__ import annotations

import contextlib
import platform
import socket
import subprocess
import time
from pathlib import Path

import psutil

from infra.postgres.embedded import port_open as _port_open

BASE_DIR = Path(__file__).resolve().parent.parent
DOC = BASE_DIR / "docs" / "benchmarks.md"
HOST = "127.0.0.1"
DOC_HEADER = (
    "# Benchmarks\n\nEach section is written by its benchmark script; rerun the script "
    "to refresh it. Numbers are from one machine and one run: compare rows within a "
    "section, not across machines.\n"
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    return _port_open(HOST, port)


def cpu_model(default: str = "unknown") -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return default


def git_commit() -> str:
    """The short commit id, marked when the working tree has uncommitted changes."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    return "unknown"


def write_section(start: str, end: str, section: str, doc: Path = DOC) -> None:
    """Replace the text between ``start`` and ``end`` in ``doc`` (re-read right before
    writing, so sections other scripts wrote meanwhile survive), or append the section."""
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else DOC_HEADER
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text)


def machine() -> dict[str, str]:
    """The machine and commit a run is on: cpu, cores, ram, os, python, commit."""
    return {
        "cpu": cpu_model(),
        "cores": str(psutil.cpu_count(logical=True)),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": git_commit(),
    }
