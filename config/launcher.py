"""``make run``: the whole product on one machine, nothing to install.

Starts the embedded PostgreSQL under ./var/ (unless ``DATABASE_URL`` is set), migrates,
loads the demo data once, and serves the API and WebSocket on http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def prepare_database(var_dir: Path) -> None:
    if os.environ.get("DATABASE_URL"):
        return
    from infra.postgres.embedded import ensure_database, server_url, start_embedded

    server = start_embedded(var_dir / "pg")
    ensure_database(server_url(server, "postgres"), "deskstream")
    os.environ["DATABASE_URL"] = server_url(server, "deskstream")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("DESKSTREAM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DESKSTREAM_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-demo", action="store_true", help="do not load demo data")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DESKSTREAM_DEMO", "1")
    os.environ.setdefault("DESKSTREAM_PROJECTORS_IN_PROCESS", "1")
    prepare_database(BASE_DIR / "var")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if not args.no_demo:
        call_command("seed_demo")

    import uvicorn

    uvicorn.run(
        "config.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        log_level=os.environ.get("DESKSTREAM_SERVER_LOG_LEVEL", "warning"),
        lifespan="off",
    )


if __name__ == "__main__":
    main()
