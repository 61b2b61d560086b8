"""``manage.py attachments rescan``: enqueue the virus scan of every file still shown as
"scanning" (after clamd was unreachable, or once ``DESKSTREAM_CLAMD_ADDRESS`` is set). A
file scanned meanwhile is left alone: the scan records a verdict only once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from config import bootstrap


class Command(BaseCommand):
    help = "Enqueue the scan of every attachment that is still waiting for one."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("rescan", help="enqueue the scans of the files still scanning")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"enqueued {bootstrap.rescan_attachments()}")
