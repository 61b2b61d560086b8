"""Log lines (config/settings.py LOGGING): an ISO timestamp, the level and the logger's name on
every line; JSON lines with ``DESKSTREAM_LOG_FORMAT=json``; kafka-python's INFO chatter held
back at the documented ``DESKSTREAM_LOG_LEVEL=INFO`` unless ``DESKSTREAM_KAFKA_LOG_LEVEL`` asks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Through manage.py, as every process of the product starts: Django configures LOGGING.
SCRIPT = (
    "import logging; "
    "logging.getLogger('deskstream.probe').info('probe %s', 'one'); "
    "logging.getLogger('kafka.conn').info('kafka chatter'); "
    "logging.getLogger('kafka.coordinator').warning('kafka trouble')"
)


def log_lines(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DESKSTREAM_")}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        env={**base, "DESKSTREAM_DEBUG": "1", "DESKSTREAM_LOG_LEVEL": "INFO", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr.splitlines()


def test_json_lines_carry_timestamp_level_and_logger() -> None:
    records = [json.loads(line) for line in log_lines(DESKSTREAM_LOG_FORMAT="json")]
    assert [(r["logger"], r["level"], r["event"]) for r in records] == [
        ("deskstream.probe", "info", "probe one"),
        ("kafka.coordinator", "warning", "kafka trouble"),
    ]
    for record in records:
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() is not None
        assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_console_lines_carry_timestamp_level_and_logger() -> None:
    lines = log_lines()
    line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[(\w+) *\] (.+) \[([\w.]+)\]$")
    parsed = [line.match(text) for text in lines]
    assert all(parsed), lines
    assert [m.groups() for m in parsed if m] == [
        ("info", "probe one", "deskstream.probe"),
        ("warning", "kafka trouble", "kafka.coordinator"),
    ]


def test_kafka_log_level_lets_its_info_through() -> None:
    records = [
        json.loads(line)
        for line in log_lines(DESKSTREAM_LOG_FORMAT="json", DESKSTREAM_KAFKA_LOG_LEVEL="INFO")
    ]
    assert [r["event"] for r in records] == ["probe one", "kafka chatter", "kafka trouble"]
