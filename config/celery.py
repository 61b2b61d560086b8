"""The Celery app. Its tasks (sending an outbox e-mail, the outbox sweep, the SLA check) are
registered by the composition root (``config/bootstrap.py``), which a worker imports at start.

Configured from Django settings (``CELERY_*``): Redis is the broker when
``DESKSTREAM_REDIS_URL`` (or ``DESKSTREAM_CELERY_BROKER_URL``) is set, and a worker runs
them: ``celery -A config.celery worker -B`` (``-B`` also runs the periodic sweep). Without
a broker (``make run``) tasks run eagerly where they are enqueued (ADR 0012).

Tasks are idempotent: ``send_notification_email`` claims its outbox row (locked, and only
while it is pending) and sends at most once per claim, so a retried, redelivered or
duplicated task finds the row sent or locked and sends nothing. One window is left: a crash
after the SMTP server accepted the message and before ``sent`` committed sends it again on
the retry, with the same ``Message-ID`` (docs/notifications.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SEND = "deskstream.send_notification_email"
SWEEP = "deskstream.sweep_notification_outbox"
CHECK_SLA = "deskstream.check_sla"
SCAN = "deskstream.scan_attachment"
RESCAN = "deskstream.rescan_attachments"
DRAFT = "deskstream.generate_draft"

app = Celery("deskstream")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # No broker: tasks run eagerly, and kombu's in-memory transport stands in for the unused
    # broker connection (its default would be an AMQP server on localhost; a host named
    # here keeps kombu from warning "No hostname was supplied" at every start).
    broker_url=settings.CELERY_BROKER_URL or "memory://localhost/",
    # Acknowledge after the task ran: a worker that dies mid-send gets the task redelivered,
    # and the outbox row's state decides whether anything is still to send.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=settings.TASK_TIME_LIMIT or None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    imports=("config.bootstrap",),
    beat_schedule={
        "sweep-notification-outbox": {"task": SWEEP, "schedule": settings.OUTBOX_SWEEP_INTERVAL},
        # Where no projector process runs the SLA check's thread (docker-compose: the web
        # server runs with --projectors none). Recording a breach is idempotent.
        "check-sla": {"task": CHECK_SLA, "schedule": settings.SLA_CHECK_INTERVAL},
        "rescan-attachments": {"task": RESCAN, "schedule": settings.ATTACHMENT_RESCAN_INTERVAL},
    },
)


log = logging.getLogger(__name__)


def queue_depth(queues: Iterable[str] = ()) -> int | None:
    """Tasks waiting in ``queues`` (the default queue when none are named) on the broker, read
    on a connection of its own with short timeouts: kombu's passive declare, which also counts
    its priority lists. None when the broker does not answer; 0 without a broker (eager tasks
    wait nowhere). The one reading for the metric, the worker's watchdog and the outbox sweep."""
    if app.conf.task_always_eager or not settings.CELERY_BROKER_URL:
        return 0
    names = list(queues) or [settings.CELERY_TASK_DEFAULT_QUEUE]
    try:
        with app.connection_for_read(
            connect_timeout=5, transport_options={"socket_timeout": 5, "socket_connect_timeout": 5}
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
            channel: Any = conn.default_channel  # kombu's virtual channel
            return sum(int(channel.queue_declare(q, passive=True).message_count) for q in names)
    except Exception:  # the broker is down or between restarts: Celery reconnects itself
        log.debug("could not read the Celery queue depth", exc_info=True)
        return None
