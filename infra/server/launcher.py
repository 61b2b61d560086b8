"""``make run``: the whole product on one machine, nothing to install.

Builds the web app when ``web/dist`` is missing or stale (npm; without npm only the API is
served), starts the embedded PostgreSQL under ./var/ (unless ``DATABASE_URL`` is set),
migrates, loads the demo data once, runs every projector and serves the API and the web app
on http://127.0.0.1:8000.

The projectors run in a second process (``manage.py projector run-all``) by default, so the
web server and the projectors each get a core and an interpreter lock of their own
(``bench/commands.py`` measures both layouts); ``--projectors threads`` runs them in threads
of the web server instead, one process in all; ``--projectors none`` starts none of them
(distributed mode: docker-compose runs each projector as a service of its own, some fed from
Kafka, and a second feeder of a projection would apply its events twice). The push projector
(WebSocket frames) runs in the web server process in every mode: it writes no tables (with
several workers on Redis, in the worker elected to publish, ADR 0044).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from infra.clamav import daemon as clamd
from infra.server import lifecycle

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# process: ``projector run-all`` beside the server; threads: in the server; none: elsewhere.
PROJECTOR_MODES = ("process", "threads", "none")


def prepare_database(var_dir: Path) -> None:
    if os.environ.get("DATABASE_URL"):
        return
    from infra.postgres.embedded import ensure_database, server_url, start_embedded

    print(f"Starting embedded PostgreSQL in {var_dir / 'pg'} ...", flush=True)
    server = start_embedded(var_dir / "pg")
    ensure_database(server_url(server, "postgres"), "deskstream")
    os.environ["DATABASE_URL"] = server_url(server, "deskstream")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The launcher's options (also read by tests/unit/test_compose.py for the web service)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("DESKSTREAM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DESKSTREAM_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-demo", action="store_true", help="no demo data and no demo sign-in")
    parser.add_argument(
        "--projectors",
        choices=PROJECTOR_MODES,
        default=os.environ.get("DESKSTREAM_PROJECTORS_MODE", "process"),
        help="projectors in a second process (default), in threads of the web server, or "
        "none (they run elsewhere; the push projector still runs in the web server)",
    )
    args = parser.parse_args(argv)
    if args.projectors not in PROJECTOR_MODES:  # a default from the environment
        parser.error(f"DESKSTREAM_PROJECTORS_MODE: one of {', '.join(PROJECTOR_MODES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(BASE_DIR / "var" / "run"))
    (BASE_DIR / "var" / "run").mkdir(parents=True, exist_ok=True)
    os.environ["DESKSTREAM_DEMO"] = "0" if args.no_demo else os.environ.get("DESKSTREAM_DEMO", "1")
    os.environ["DESKSTREAM_PROJECTORS_IN_PROCESS"] = "1" if args.projectors == "threads" else "0"
    os.environ.setdefault("DESKSTREAM_EMAIL_OUTBOX", "1")  # mail to ./var/outbox (and SMTP if set)
    if args.host in ("127.0.0.1", "localhost", "::1"):
        # Plain HTTP on this machine: a Secure cookie would not be sent back (ADR 0033).
        os.environ.setdefault("DESKSTREAM_COOKIE_SECURE", "0")
    prepare_database(BASE_DIR / "var")
    threads = args.projectors == "threads"
    if args.workers > 1 and threads and not os.environ.get("DESKSTREAM_CLICKHOUSE_URL"):
        # chDB's directory belongs to one process (ADR 0035): workers that each run the
        # projectors need a server (with the projector process, they all read through it).
        print(
            f"  Note: {args.workers} workers with --projectors threads and no"
            " DESKSTREAM_CLICKHOUSE_URL: analytics off (chDB serves one process).",
            flush=True,
        )
        os.environ["DESKSTREAM_ANALYTICS"] = "0"

    scanner = start_scanner(BASE_DIR / "var" / "clamav")

    from infra.server.webapp import ensure_built

    problem = ensure_built()
    if problem:
        print(f"\nThe web app was not built: {problem}\nServing the API only.\n", flush=True)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if not args.no_demo:
        call_command("seed_demo")

    base = f"http://{args.host}:{args.port}"
    outbox = os.environ.get("DESKSTREAM_EMAIL_OUTBOX_DIR") or BASE_DIR / "var" / "outbox"
    print(
        f"\nDeskstream is running on {base}\n"
        f"  Web app:   {base}/\n"
        f"  API docs:  {base}/api/docs/\n"
        f"  Sign in:   curl -X POST {base}/api/auth/demo-login "
        "-H 'Content-Type: application/json' -d '{\"email\": \"agent.ada@deskstream.test\"}'\n"
        "  Demo users: admin@deskstream.test, agent.ada@deskstream.test, "
        "agent.bob@deskstream.test, agent.cy@deskstream.test,\n"
        "              maria@acme.test (a customer; any new e-mail becomes a customer)\n"
        f"  E-mail:    {outbox} (admins: GET {base}/api/outbox)\n"
        f"  Scanning:  {scanner_note(scanner)}\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )
    log_level = os.environ.get("DESKSTREAM_SERVER_LOG_LEVEL", "warning")
    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default
    # handler that would end this process before the projector process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    child = start_projector_process() if args.projectors == "process" else None
    try:
        if args.workers > 1:
            if not os.environ.get("DESKSTREAM_REDIS_URL"):
                # Frames still reach every socket (without Redis each worker's push projector
                # follows the whole log and delivers to its own sockets), but typing
                # indicators and presence travel through the channel layer and the presence
                # store, which without Redis are per process.
                print(
                    f"  Note: {args.workers} workers without DESKSTREAM_REDIS_URL: typing"
                    " indicators and presence reach only the sockets of the same worker.",
                    flush=True,
                )
            serve_workers(args.host, args.port, args.workers, log_level)
            return

        import uvicorn

        uvicorn.run(
            "config.asgi:application",
            host=args.host,
            port=args.port,
            log_level=log_level,
            lifespan="off",
            http=HTTP_PROTOCOL,
            ws_per_message_deflate=ws_compression(),
            access_log=access_log(log_level),
            log_config=None,  # uvicorn logs through Django's LOGGING (timestamps, logger)
        )
    finally:
        lifecycle.shutdown()  # the projector threads, then the event store (config/bootstrap.py)
        if child is not None:
            stop_child(child)
        if isinstance(scanner, subprocess.Popen):
            stop_child(scanner)


# uvicorn's httptools protocol, writing each response's head and body at once (http.py here).
HTTP_PROTOCOL = "infra.server.http:HttpToolsProtocol"


def ws_compression() -> bool:
    """permessage-deflate on the WebSockets: ``DESKSTREAM_WS_COMPRESSION`` (off by default,
    ADR 0051: per socket and frame it cost more CPU than everything else of a pushed frame)."""
    from django.conf import settings

    return bool(settings.WS_COMPRESSION)


def access_log(log_level: str) -> bool:
    """uvicorn's access log only at a level that prints it: at ``warning`` (the default) its
    lines are dropped anyway, but uvicorn still builds their arguments for every request."""
    return log_level.lower() in {"trace", "debug", "info"}


def start_scanner(home: Path) -> subprocess.Popen[bytes] | str:
    """The virus scanner every attachment waits for: ``DESKSTREAM_CLAMD_ADDRESS`` if set,
    else Debian's clamd started here (``make run`` installs it where it can), with the
    machine's signatures or, without them, the EICAR test signature only; its process, or
    why there is none (files then stay "scanning": nothing is offered unscanned)."""
    if os.environ.get("DESKSTREAM_CLAMD_ADDRESS"):
        return f"clamd at {os.environ['DESKSTREAM_CLAMD_ADDRESS']}"
    database = clamd.system_database()
    try:
        started = clamd.start_clamd(home, database)
    except RuntimeError as error:
        return f"none: {error}; uploaded files stay scanning"
    if started is None:
        return "none (no clamd: apt-get install clamav-daemon); uploaded files stay scanning"
    address, proc = started
    os.environ["DESKSTREAM_CLAMD_ADDRESS"] = address  # the projector process inherits it
    return proc


def scanner_note(scanner: subprocess.Popen[bytes] | str) -> str:
    if isinstance(scanner, str):
        return scanner
    address = os.environ["DESKSTREAM_CLAMD_ADDRESS"]
    if clamd.system_database() is not None:
        return f"clamd on {address}, signatures from {clamd.SYSTEM_DATABASE}"
    return (
        f"clamd on {address} with the EICAR test signature only (no signature database: "
        "run freshclam for real ones)"
    )


def start_projector_process() -> subprocess.Popen[bytes]:
    """``manage.py projector run-all`` beside the web server, with the same environment."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script, no user input
        [sys.executable, str(BASE_DIR / "manage.py"), "projector", "run-all"],
        cwd=BASE_DIR,
        env={**os.environ, "DESKSTREAM_PARENT_PID": str(os.getpid())},
    )


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Let the projector process finish its batches (SIGTERM), then make sure it is gone."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def serve_workers(host: str, port: int, workers: int, log_level: str) -> None:
    """``uvicorn.run(..., workers=N)``, with the shared listening socket bound as TCP.

    For several workers uvicorn binds the socket itself with ``proto`` left at 0. Accepted
    connections inherit that, asyncio then never sets ``TCP_NODELAY`` on them, and every
    keep-alive response waits ~40 ms for the client's delayed ACK (Kludex/uvicorn#3149;
    measured here: 48 ms instead of 7 ms for a bare 401). Re-creating the socket object with
    ``IPPROTO_TCP`` (same file descriptor) fixes that; the workers inherit it.
    """
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "config.asgi:application",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        lifespan="off",
        http=HTTP_PROTOCOL,
        ws_per_message_deflate=ws_compression(),
        access_log=access_log(log_level),
        log_config=None,
    )
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
