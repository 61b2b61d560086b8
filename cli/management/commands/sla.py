"""``manage.py sla check [--now ISO-TIME]``: record SLA breaches of tickets past a deadline.

The embedded mode runs the same check in a thread; elsewhere run this from cron or any
scheduler (it is safe to run twice at once: recording a breach is idempotent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config import bootstrap


class Command(BaseCommand):
    help = "Record SLA breaches (SlaBreached events) of tickets past a deadline."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="record the breaches due now (or at --now)")
        check.add_argument("--now", default=None, help="ISO-8601 time with offset (tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] != "check":  # pragma: no cover - argparse refuses others
            raise CommandError(f"unknown action {options['action']}")
        now = None
        if options["now"]:
            try:
                now = datetime.fromisoformat(options["now"])
            except ValueError:
                raise CommandError("--now: ISO-8601, e.g. 2026-11-27T10:00:00+00:00") from None
            if now.tzinfo is None:
                raise CommandError("--now needs a UTC offset, e.g. +00:00")
        result = bootstrap.check_sla(now)
        self.stdout.write(
            f"SLA check: {result.recorded} breaches recorded, {result.unchanged} unchanged, "
            f"{result.stale} stale, {result.failed} failed; {result.refreshed} deadlines "
            "refreshed"
        )
