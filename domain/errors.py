"""Domain errors: every rule the aggregates enforce fails with one of these.

The HTTP mapping lives in one place (``command_api.errors``); the domain only says what went
wrong, with enough data for a useful message.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a command that the domain refuses."""

    code = "domain_error"

    def __init__(self, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.data = data


class ValidationError(DomainError):
    """A command's arguments break an invariant (empty subject, unknown priority, ...)."""

    code = "invalid"


class IllegalTransitionError(DomainError):
    """The lifecycle table does not allow this move for this role."""

    code = "illegal_transition"


class PermissionDeniedError(DomainError):
    """The actor's role may not perform this command on this ticket."""

    code = "forbidden"


class ForeignTicketError(PermissionDeniedError):
    """A customer addressed a ticket that is not theirs (reported as not found: no leak)."""

    code = "not_found"


class TicketClosedError(IllegalTransitionError):
    """Closed is final: nothing more happens to a closed ticket."""

    code = "ticket_closed"


class StaleReplyError(DomainError):
    """A public reply was written against a version older than the newest public message."""

    code = "stale_reply"


class VersionConflictError(DomainError):
    """The command was decided on an older version of the aggregate (``expected_version``)."""

    code = "version_conflict"


class NotFoundError(DomainError):
    """The aggregate does not exist."""

    code = "not_found"
