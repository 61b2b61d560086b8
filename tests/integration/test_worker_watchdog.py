"""A Celery worker whose consumer stopped while tasks wait stops itself, so its supervisor
starts it again (``infra.server.worker_watchdog``; celery#10205). The stop is made real: the
worker is told to cancel its consumer of the queue (Celery's remote control), it stays alive
and idle as after the upstream bug, and a task is then sent to the queue."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest
import redis
from celery import Celery

from config.celery import SWEEP
from tests.conftest import free_port
from tests.integration.test_notification_mail import broker_url, queue, service_env, smtp
from tests.support import celery_worker
from tests.support.smtp import SmtpSink

__all__ = ["broker_url", "queue", "smtp"]  # the fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_worker(
    broker_url: str, queue: str, smtp: SmtpSink, stall: str
) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**service_env(broker_url, queue, smtp), "DESKSTREAM_WORKER_STALL_SECONDS": stall}
    return celery_worker.start_worker(queue, env)


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
        celery_worker.stop_worker(proc)
        app.close()
    assert "stopping this worker" not in "".join(lines)


def test_the_queue_depth_is_read_from_the_broker_for_the_metric_and_the_watchdog(
    broker_url: str, queue: str, settings: Any
) -> None:
    """One reading (``config.celery.queue_depth``) serves the watchdog, the outbox sweep and
    the ``deskstream_celery_queue_depth`` metric: tasks sent to a queue nobody consumes are
    counted, and a broker that does not answer gives no number, not 0."""
    from config import bootstrap
    from config import celery as celery_config

    waiting = f"{queue}-depth"
    conf = celery_config.app.conf
    before = (conf.broker_url, conf.task_always_eager)
    conf.broker_url, conf.task_always_eager = broker_url, False
    settings.CELERY_BROKER_URL = broker_url
    settings.CELERY_TASK_DEFAULT_QUEUE = waiting
    app = control(broker_url)
    try:
        for _ in range(3):
            app.send_task(SWEEP, queue=waiting)
        assert celery_config.queue_depth([waiting]) == 3
        assert celery_config.queue_depth() == 3  # the default queue
        assert bootstrap.celery_queue_waiting() == {waiting: 3}
        assert bootstrap.emails_waiting() == 3
        conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        assert celery_config.queue_depth([waiting]) is None
        assert bootstrap.celery_queue_waiting() == {}
    finally:
        conf.broker_url, conf.task_always_eager = before
        redis.Redis.from_url(broker_url).delete(waiting)
        app.close()
