"""Wiring of automation: the assignment process manager, the SLA projector and the SLA check.

- ``assignment_store``: the assignment manager's store (``infra.postgres.assignment``). Its
  live batches decide with the settings in force (``infra.automation``) and the time
  (``clock``), then issue ``assign_ticket`` as ``Actor("automation", Role.SYSTEM)``.
  ``DESKSTREAM_AUTO_ASSIGN=0`` (or the admin setting ``enabled: false``) keeps it following the
  log without deciding anything.
- ``sla_store``: the SLA projector's store (``infra.postgres.sla``), deadlines by the rules
  in force.
- ``check_sla``: the scheduled check that records ``SlaBreached`` for tickets past a
  deadline. It runs in a thread under ``make run`` (every ``DESKSTREAM_SLA_CHECK_INTERVAL``
  seconds) and as ``manage.py sla check`` (cron, a systemd timer, or any scheduler).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from command_api.application import Actor, Assignment, get_application
from domain.errors import DomainError, VersionConflictError
from domain.lifecycle import Priority, Role
from domain.sla import BusinessCalendar, SlaPolicy
from infra.automation.rules import SlaRules, assignment_rules, sla_rules
from infra.postgres import assignment as pg_assignment
from infra.postgres import sla as pg_sla
from infra.postgres.assignment import Deciding, PostgresAssignmentState, ProcessManagerStore
from infra.postgres.projection_store import PostgresProjectionStore
from projections import assignment, sla
from projections.assignment import AssignCommand, Outcome
from projections.sla import BreachCommand

log = logging.getLogger(__name__)

AUTOMATION = Actor(assignment.ACTOR_ID, Role.SYSTEM)

# What "now" is for decisions (working hours) and the SLA check; tests set a fixed time.
clock: Callable[[], datetime] = timezone.now


# ------------------------------------------------------------------------------ assignment
def _deciding() -> Deciding | None:
    """The settings a live batch decides with, read when it decides."""
    if not settings.AUTO_ASSIGN:
        return None
    rules = assignment_rules()
    return Deciding(rules.policy, clock()) if rules.enabled else None


def _assignment_state(cursor: Any, suffix: str) -> PostgresAssignmentState:
    return PostgresAssignmentState(cursor, suffix, deciding=_deciding)


def assignment_store() -> ProcessManagerStore:
    return ProcessManagerStore(
        assignment.NAME,
        tables=pg_assignment.TABLES,
        state_factory=_assignment_state,
        handler=pg_assignment.handler,
        issue=issue_assignments,
    )


def assign(command: AssignCommand) -> str:
    """``projections.assignment.AssignmentCommands.assign`` through the application."""
    try:
        get_application().assign_ticket(
            command.ticket_id,
            AUTOMATION,
            agent_id=command.agent_id,
            policy=command.policy,
            reason=command.reason,
            expected_version=command.expected_version,
        )
    except VersionConflictError:
        return Outcome.STALE
    except DomainError as err:
        log.warning("assignment of %s refused: %s", command.ticket_id, err.detail)
        return Outcome.REFUSED
    return Outcome.ASSIGNED


ISSUE_CHUNK = 256


def issue_assignments(
    commands: list[AssignCommand],
) -> list[tuple[AssignCommand, str | BaseException]]:
    """Issue a batch's decisions, many per transaction (``assign_many``)."""
    out: list[tuple[AssignCommand, str | BaseException]] = []
    for i in range(0, len(commands), ISSUE_CHUNK):
        chunk = commands[i : i + ISSUE_CHUNK]
        try:
            results = get_application().assign_many(
                AUTOMATION,
                [
                    Assignment(c.ticket_id, c.agent_id, c.policy, c.reason, c.expected_version)
                    for c in chunk
                ],
            )
        except Exception as err:  # they stay pending and are issued again after a while
            log.warning("issuing %s assignments failed", len(chunk), exc_info=True)
            out += [(c, err) for c in chunk]
            continue
        for command, result in zip(chunk, results, strict=True):
            out.append((command, _outcome(command, result)))
    return out


def _outcome(command: AssignCommand, result: object) -> str:
    if isinstance(result, VersionConflictError):
        return Outcome.STALE
    if isinstance(result, DomainError):
        log.warning("assignment of %s refused: %s", command.ticket_id, result.detail)
        return Outcome.REFUSED
    return Outcome.ASSIGNED


# ------------------------------------------------------------------------------ SLA
class _RulesOnFirstUse:
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


def _sla_state(cursor: Any, suffix: str) -> pg_sla.PostgresSlaState:
    return pg_sla.PostgresSlaState(cursor, suffix, rules=_RulesOnFirstUse())


def sla_store() -> PostgresProjectionStore:
    return PostgresProjectionStore(
        sla.NAME, tables=pg_sla.TABLES, state_factory=_sla_state, handler=pg_sla.handler
    )


def record_breach(command: BreachCommand) -> str:
    """``projections.sla.SlaCommands.record_breach`` through the application."""
    try:
        result = get_application().record_sla_breach(
            command.ticket_id,
            AUTOMATION,
            target=command.target,
            deadline=command.deadline,
            breached_at=command.breached_at,
            priority=command.priority,
            policy=command.policy,
            expected_version=command.expected_version,
        )
    except VersionConflictError:
        return "stale"  # the projector has not seen the ticket's newest event: next check
    return "recorded" if result.position is not None else "unchanged"


@dataclass
class CheckResult:
    refreshed: int = 0  # deadlines recomputed after a change of the rules
    recorded: int = 0
    unchanged: int = 0  # met in time or already recorded (the projector lagged)
    stale: int = 0
    failed: int = 0


_fingerprint: str | None = None
_check_lock = threading.Lock()


def check_sla(now: datetime | None = None) -> CheckResult:
    """Record ``SlaBreached`` for every ticket past a deadline at ``now`` (default: the clock)."""
    global _fingerprint
    at = now or clock()
    result = CheckResult()
    with _check_lock:
        rules = sla_rules()
        fingerprint = rules.fingerprint()
        if fingerprint != _fingerprint:
            result.refreshed = pg_sla.refresh_deadlines(rules)
            _fingerprint = fingerprint
        for command in sla.due_breaches(pg_sla.overdue(at), rules, at):
            try:
                outcome = record_breach(command)
            except Exception:
                log.warning("recording the SLA breach of %s failed", command.ticket_id,
                            exc_info=True)  # fmt: skip
                result.failed += 1
                continue
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def forget_rules() -> None:
    """Make the next check recompute every deadline (as after a change of the rules)."""
    global _fingerprint
    _fingerprint = None


def sla_check_thread(stop: threading.Event) -> threading.Thread:
    """The scheduled SLA check in a thread (the embedded mode has no Celery beat)."""

    def loop() -> None:
        try:
            while not stop.wait(settings.SLA_CHECK_INTERVAL):
                try:
                    result = check_sla()
                    if result.recorded:
                        log.info("SLA check: %s breaches recorded", result.recorded)
                except Exception:
                    log.warning("SLA check failed; next try in %s s",
                                settings.SLA_CHECK_INTERVAL, exc_info=True)  # fmt: skip
        finally:
            connection.close()

    return threading.Thread(target=loop, name="sla-check", daemon=True)
