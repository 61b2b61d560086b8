"""A real ClickHouse server for the tests and benchmarks: Debian's ``clickhouse-server``
(18.16), started with a config file of our own (127.0.0.1 only, free ports, data under the
directory given, UTC), stopped by PID. Production uses ClickHouse via docker-compose.

It also has the ``analyst`` user (read-only, ``readonly=1``) that docker-compose has, so the
tests can check that analysts can read and cannot write.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{dir}/log/server.log</log>
        <errorlog>{dir}/log/error.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp}</tcp_port>
    <http_port>{http}</http_port>
    <interserver_http_port>{interserver}</interserver_http_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
    <profiles>
        <default><max_memory_usage>4000000000</max_memory_usage></default>
        <readonly><readonly>1</readonly></readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <analyst>
            <password>analyst</password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </analyst>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


def server_binary() -> str | None:
    return shutil.which("clickhouse-server") or (
        "/usr/sbin/clickhouse-server" if Path("/usr/sbin/clickhouse-server").exists() else None
    )


def install() -> str | None:
    """Debian's package when the binary is missing (root, as on the CI machines)."""
    binary = server_binary()
    if binary is not None:
        return binary
    if shutil.which("apt-get") is None:
        return None
    for args in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "clickhouse-server", "clickhouse-client"],
    ):
        if subprocess.call(args, stdout=subprocess.DEVNULL) != 0:  # noqa: S603
            return None
    return server_binary()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_clickhouse(
    directory: Path, *, timeout: float = 30.0
) -> tuple[str, subprocess.Popen[bytes]] | None:
    """Start a server with its data in ``directory``; return its URL
    (``clickhouse://127.0.0.1:PORT/default``) and process once it accepts connections, or
    None without the binary. The caller stops the process (terminate, by PID)."""
    binary = install()
    if binary is None:
        return None
    directory = directory.resolve()
    for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    tcp, http, interserver = _free_port(), _free_port(), _free_port()
    config = directory / "config.xml"
    config.write_text(CONFIG.format(dir=directory, tcp=tcp, http=http, interserver=interserver))
    (directory / "users.xml").write_text(USERS)
    proc = subprocess.Popen(  # noqa: S603 - Debian's binary, our own config
        [binary, f"--config-file={config}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
    )
    deadline = time.monotonic() + timeout
    while not _listening(tcp):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log = directory / "log" / "error.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"clickhouse-server did not start: {detail}")
        time.sleep(0.05)
    return f"clickhouse://127.0.0.1:{tcp}/default", proc
