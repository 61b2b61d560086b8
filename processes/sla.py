"""The SLA check: records ``SlaBreached`` for every ticket past a deadline, and
``SlaReminderDue`` for every ticket whose deadline is near (the reminder setting's minutes,
ADR 0047): once per target and deadline, decided from ``rm_sla`` (the log), so a restart
neither loses nor repeats one.

It runs in a thread under ``make run`` (every ``DESKSTREAM_SLA_CHECK_INTERVAL`` seconds) and
as ``manage.py sla check`` (cron, a systemd timer, or any scheduler). A change of the rules
refreshes every open ticket's deadlines first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import connection

from command_api.application import CommandResult, DeskstreamApplication
from domain.errors import VersionConflictError
from domain.lifecycle import Priority
from domain.sla import BusinessCalendar, SlaPolicy
from infra.automation.rules import SlaRules, sla_reminder_minutes, sla_rules
from infra.postgres import sla as pg_sla
from processes.assignment import AUTOMATION
from projections import sla
from projections.sla import BreachCommand, ReminderCommand

log = logging.getLogger(__name__)
Command = TypeVar("Command", BreachCommand, ReminderCommand)


class RulesOnFirstUse:
    """The SLA rules, read only if the batch has clocks to compute (idle batches do not)."""

    def __init__(self) -> None:
        self._rules: SlaRules | None = None

    def _get(self) -> SlaRules:
        if self._rules is None:
            self._rules = sla_rules()
        return self._rules

    def policy(self, priority: Priority) -> SlaPolicy:
        return self._get().policy(priority)

    def calendar(self) -> BusinessCalendar:
        return self._get().calendar()


@dataclass
class CheckResult:
    refreshed: int = 0  # deadlines recomputed after a change of the rules
    recorded: int = 0
    unchanged: int = 0  # met in time or already recorded (the projector lagged)
    stale: int = 0
    failed: int = 0
    reminded: int = 0  # SlaReminderDue recorded


class SlaCheck:
    """The check, with the fingerprint of the rules it last computed deadlines with."""

    def __init__(
        self, application: Callable[[], DeskstreamApplication], clock: Callable[[], datetime]
    ) -> None:
        self._application = application
        self._clock = clock
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def record_breach(self, command: BreachCommand) -> str:
        """``projections.sla.SlaCommands.record_breach`` through the application."""
        return _outcome(
            "recorded",
            lambda: self._application().record_sla_breach(
                command.ticket_id,
                AUTOMATION,
                target=command.target,
                deadline=command.deadline,
                breached_at=command.breached_at,
                priority=command.priority,
                policy=command.policy,
                expected_version=command.expected_version,
            ),
        )

    def record_reminder(self, command: ReminderCommand) -> str:
        return _outcome(
            "reminded",
            lambda: self._application().record_sla_reminder(
                command.ticket_id,
                AUTOMATION,
                target=command.target,
                deadline=command.deadline,
                reminded_at=command.reminded_at,
                minutes_before=command.minutes_before,
                expected_version=command.expected_version,
            ),
        )

    def __call__(self, now: datetime | None = None) -> CheckResult:
        """Record ``SlaBreached`` for every ticket past a deadline at ``now`` (default: the
        clock), then ``SlaReminderDue`` for every deadline within the reminder setting."""
        at = now or self._clock()
        result = CheckResult()
        with self._lock:
            rules = sla_rules()
            fingerprint = rules.fingerprint()
            if fingerprint != self._fingerprint:
                result.refreshed = pg_sla.refresh_deadlines(rules)
                self._fingerprint = fingerprint
            breaches = sla.due_breaches(pg_sla.overdue(at), rules, at)
            _record_each(breaches, self.record_breach, "breach", result)
            before = timedelta(minutes=sla_reminder_minutes())
            near = pg_sla.near_deadlines(at, before) if before else []
            reminders = sla.due_reminders(near, rules, at, before)
            _record_each(reminders, self.record_reminder, "reminder", result)
        return result

    def forget_rules(self) -> None:
        """Make the next check recompute every deadline (as after a change of the rules)."""
        self._fingerprint = None


def _outcome(done: str, call: Callable[[], CommandResult]) -> str:
    """``done`` if the command stored an event, ``unchanged`` if it had nothing to store,
    ``stale`` if the projector had not seen the ticket's newest event (the next check)."""
    try:
        result = call()
    except VersionConflictError:
        return "stale"
    return done if result.position is not None else "unchanged"


def _record_each(
    commands: Iterable[Command], record: Callable[[Command], str], what: str, result: CheckResult
) -> None:
    """Record each command, counting its outcome; one failure never stops the others."""
    for command in commands:
        try:
            outcome = record(command)
        except Exception:
            log.warning("recording the SLA %s of %s failed", what, command.ticket_id, exc_info=True)
            result.failed += 1
            continue
        setattr(result, outcome, getattr(result, outcome) + 1)


def sla_check_thread(
    check: Callable[[], CheckResult], interval: float, stop: threading.Event
) -> threading.Thread:
    """The scheduled SLA check in a thread (the embedded mode has no Celery beat)."""

    def loop() -> None:
        try:
            while not stop.wait(interval):
                try:
                    result = check()
                    if result.recorded:
                        log.info("SLA check: %s breaches recorded", result.recorded)
                except Exception:
                    log.warning("SLA check failed; next try in %s s", interval, exc_info=True)
                    connection.close()  # a broken one is never replaced otherwise
        finally:
            connection.close()

    return threading.Thread(target=loop, name="sla-check", daemon=True)
