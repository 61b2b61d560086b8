"""``manage.py outbox status | sweep [--all]``: look after the e-mail outbox.

``status`` counts the outbox rows by status and shows the oldest pending one; ``sweep``
enqueues the rows that are due (what Celery beat or the embedded sweeper does every
``DESKSTREAM_OUTBOX_SWEEP_INTERVAL`` seconds); ``--all`` enqueues every pending row now,
due or not (after an outage). Sending stays at most once per row: a task only sends a row
that is still pending.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count, Min
from django.utils import timezone

from config import bootstrap
from infra.postgres.models import NotificationOutboxRecord

FAR_FUTURE = timedelta(days=36500)


class Command(BaseCommand):
    help = "Inspect the e-mail outbox or enqueue its due rows."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="rows by status, oldest pending")
        sweep = sub.add_parser("sweep", help="enqueue the rows that are due")
        sweep.add_argument("--all", action="store_true", help="every pending row, due or not")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sweep":
            at = timezone.now() + FAR_FUTURE if options["all"] else None
            self.stdout.write(f"enqueued {bootstrap.sweep(at=at)}")
            return
        counts = dict(
            NotificationOutboxRecord.objects.values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for status in NotificationOutboxRecord.Status.values:
            self.stdout.write(f"{status:8} {counts.get(status, 0)}")
        oldest = NotificationOutboxRecord.objects.filter(status="pending").aggregate(
            at=Min("created_at")
        )["at"]
        self.stdout.write(f"oldest pending: {oldest.isoformat() if oldest else '-'}")
