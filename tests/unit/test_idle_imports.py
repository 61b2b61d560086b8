"""What every process of ``make run`` imports at start, idle included: not the clients of
services it is not configured for. The openai client (~600 modules, ~22 MB of memory) and
clickhouse-driver (~25 MB) are imported where a model or a ClickHouse server is used, so the
web server and the projector process stay under the idle memory target (issue 15)."""

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
print(json.dumps({m: m in sys.modules for m in ("openai", "clickhouse_driver")}))
"""


def test_the_composition_root_imports_neither_openai_nor_clickhouse_driver() -> None:
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
    }


def test_a_clickhouse_server_is_still_opened_with_its_client(clickhouse_url: str) -> None:
    from infra.clickhouse.connect import open_database

    db = open_database(clickhouse_url, "")
    try:
        assert type(db).__module__ == "infra.clickhouse.native"
        assert db.query("SELECT 1 + 1") == [(2,)]
    finally:
        db.close()
