"""Start Debian's ``clamd`` on a free port of 127.0.0.1 (``make run`` and the test suite).

Signatures: the machine's database (``/var/lib/clamav``, kept by ``freshclam``) when it has
one; else a database built here that knows only the EICAR test file, so that scanning and
quarantine work end to end where signatures cannot be downloaded (the test suite, a demo).
clamd is ready in about 3 s with that one signature, and takes longer with a full set.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

# The EICAR anti-virus test file: harmless, but every scanner reports it as malware. Built
# from two halves so that this source file itself is not flagged by scanners.
EICAR = (r"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()
SYSTEM_DATABASE = Path("/var/lib/clamav")
CONF = """Foreground yes
TCPSocket {port}
TCPAddr 127.0.0.1
DatabaseDirectory {db}
LogFile {log}
StreamMaxLength 64M
"""


def binaries() -> tuple[str, str] | None:
    """``clamd`` and ``sigtool``, or None when clamav-daemon is not installed."""
    clamd = shutil.which("clamd") or "/usr/sbin/clamd"
    sigtool = shutil.which("sigtool") or "/usr/bin/sigtool"
    if Path(clamd).exists() and Path(sigtool).exists():
        return clamd, sigtool
    return None


def system_database() -> Path | None:
    """The machine's signature database, if ``freshclam`` has filled it."""
    if any(SYSTEM_DATABASE.glob("*.c[lv]d")):
        return SYSTEM_DATABASE
    return None


def eicar_database(directory: Path, sigtool: str) -> Path:
    """A database in ``directory`` that knows the EICAR test file only."""
    directory.mkdir(parents=True, exist_ok=True)
    sample = directory / "eicar.txt"
    sample.write_bytes(EICAR)
    try:
        signatures = subprocess.run(  # noqa: S603 - the system's sigtool, our own file
            [sigtool, "--md5", sample.name], cwd=directory, check=True, capture_output=True
        ).stdout
    finally:
        sample.unlink()
    (directory / "local.hdb").write_bytes(signatures)
    return directory


def start_clamd(
    home: Path, database: Path | None = None, *, timeout: float = 60.0
) -> tuple[str, subprocess.Popen[bytes]] | None:
    """clamd with its configuration and log in ``home`` and the signatures in ``database``
    (default: an EICAR-only database in ``home/db``); its ``host:port`` and process, or None
    without the binaries. Raises ``RuntimeError`` if it does not answer within ``timeout``."""
    found = binaries()
    if found is None:
        return None
    clamd, sigtool = found
    home.mkdir(parents=True, exist_ok=True)
    db = database or eicar_database(home / "db", sigtool)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = home / "clamd.conf"
    conf.write_text(CONF.format(port=port, db=db, log=home / "clamd.log"))
    proc = subprocess.Popen(  # noqa: S603 - the system's clamd, our own configuration
        [clamd, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"127.0.0.1:{port}", proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            proc.wait(10)
            raise RuntimeError(f"clamd on 127.0.0.1:{port} did not start (log: {home}/clamd.log)")
        time.sleep(0.1)
