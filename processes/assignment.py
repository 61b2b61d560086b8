"""Automatic assignment: the process manager's decisions, issued as ``assign_ticket`` commands.

The store (``infra.postgres.assignment``) decides in its live batches with the settings in
force and the time; ``AssignmentIssuer`` issues the decided commands through the application,
many per transaction, as ``Actor("automation", Role.SYSTEM)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from command_api.application import Actor, Assignment, DeskstreamApplication
from domain.errors import DomainError, VersionConflictError
from domain.lifecycle import Role
from infra.automation.rules import assignment_rules
from infra.postgres.assignment import Deciding
from projections import assignment
from projections.assignment import AssignCommand, Outcome

log = logging.getLogger(__name__)

AUTOMATION = Actor(assignment.ACTOR_ID, Role.SYSTEM)
ISSUE_CHUNK = 256

Issued = list[tuple[AssignCommand, str | BaseException]]


def deciding(enabled: bool, clock: Callable[[], datetime]) -> Deciding | None:
    """The settings a live batch decides with, read when it decides (None: do not decide)."""
    if not enabled:
        return None
    rules = assignment_rules()
    return Deciding(rules.policy, clock()) if rules.enabled else None


class AssignmentIssuer:
    """Issues the assignment manager's decisions through the application."""

    def __init__(self, application: Callable[[], DeskstreamApplication]) -> None:
        self._application = application

    def assign(self, command: AssignCommand) -> str:
        """One decision (``projections.assignment.AssignmentCommands.assign``)."""
        try:
            self._application().assign_ticket(
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

    def issue(self, commands: list[AssignCommand]) -> Issued:
        """A batch's decisions, many per transaction (``assign_many``)."""
        out: Issued = []
        for i in range(0, len(commands), ISSUE_CHUNK):
            chunk = commands[i : i + ISSUE_CHUNK]
            try:
                results = self._application().assign_many(
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
