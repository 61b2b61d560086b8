"""What every process of ``make run`` imports at start, idle included: not the clients of
services it is not configured for. The openai client (~600 modules, ~22 MB of memory),
clickhouse-driver (~25 MB) and kafka-python (~7 MB) are imported where a model, a ClickHouse
server or Kafka is used, so the web server and the projector process stay under the idle
memory target (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import django
django.setup()
import config.bootstrap  # the composition root: the web server and the projectors import it
import command_api.lane, infra.clickhouse.connect, infra.server.launcher
import cli.management.commands.projector  # make run's projector process
print(json.dumps({m: m in sys.modules for m in ("openai", "clickhouse_driver", "kafka")}))
"""


def test_the_composition_root_imports_no_openai_clickhouse_driver_or_kafka() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.setdefault("DESKSTREAM_SECRET_KEY", "x" * 50)
    env.pop("DESKSTREAM_CLICKHOUSE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "openai": False,
        "clickhouse_driver": False,
        "kafka": False,
    }


def test_a_clickhouse_server_is_still_opened_with_its_client(clickhouse_url: str) -> None:
    from infra.clickhouse.connect import open_database

    db = open_database(clickhouse_url, "")
    try:
        assert type(db).__module__ == "infra.clickhouse.native"
        assert db.query("SELECT 1 + 1") == [(2,)]
    finally:
        db.close()


def test_kafka_errors_are_still_transient_once_kafka_is_in_use() -> None:
    from kafka import errors as kafka_errors

    from infra.kafka.resilience import is_transient

    assert is_transient(kafka_errors.KafkaConnectionError())
    assert is_transient(kafka_errors.KafkaTimeoutError())
    assert is_transient(ConnectionError())
    assert not is_transient(ValueError("a bug, not an outage"))
