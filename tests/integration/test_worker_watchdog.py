"""A Celery worker whose consumer stopped while tasks wait stops itself, so its supervisor
starts it again (``infra.server.worker_watchdog``; celery#10205). The stop is made real: the
worker is told to cancel its consumer of the queue (Celery's remote control), it stays alive
and idle as after the upstream bug, and a task is then sent to the queue."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from celery import Celery

from config.celery import SWEEP
from tests.conftest import ROOT
from tests.integration.test_notification_mail import broker_url, queue, service_env, smtp
from tests.support.smtp import SmtpSink

__all__ = ["broker_url", "queue", "smtp"]  # the fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_worker(broker_url: str, queue: str, smtp: SmtpSink, stall: str) -> Any:
    env = {**service_env(broker_url, queue, smtp), "DESKSTREAM_WORKER_STALL_SECONDS": stall}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config.celery", "worker", "--pool=solo",
            "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "info",
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        pytest.fail("the Celery worker did not start:\n" + "".join(lines[-40:]))
    return proc, lines


def control(broker_url: str) -> Celery:
    return Celery("watchdog-test", broker=broker_url)


def test_a_worker_that_stopped_consuming_while_tasks_wait_stops_for_its_supervisor(
    broker_url: str, queue: str, smtp: SmtpSink
) -> None:
    proc, lines = start_worker(broker_url, queue, smtp, stall="3")
    app = control(broker_url)
    try:
        name = next(m[1] for line in lines if (m := re.search(r"(\S+@\S+) ready\.", line)))
        answer = app.control.cancel_consumer(queue, destination=[name], reply=True, timeout=10)
        assert answer, "the worker did not answer the remote control"
        time.sleep(5)  # longer than the stall time: an empty queue is no stall
        assert proc.poll() is None, "".join(lines[-40:])
        app.send_task(SWEEP, queue=queue)  # waits: nothing consumes the queue now
        proc.wait(45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        app.close()
    log = "".join(lines)
    assert "1 task(s) waited 3 s in this worker's queues and it received none" in log, log[-3000:]
    assert "stopping this worker so that its supervisor starts it again" in log


def test_a_worker_that_consumes_is_left_alone(broker_url: str, queue: str, smtp: SmtpSink) -> None:
    proc, lines = start_worker(broker_url, queue, smtp, stall="2")
    app = control(broker_url)
    try:
        for _ in range(6):  # tasks keep coming for three times the stall time
            app.send_task(SWEEP, queue=queue)
            time.sleep(1)
        assert proc.poll() is None, "".join(lines[-40:])
        assert sum(f"{SWEEP}" in line and "succeeded" in line for line in lines) >= 5
    finally:
        proc.terminate()
        proc.wait(30)
        app.close()
    assert "stopping this worker" not in "".join(lines)
