"""The ticket lifecycle as data: states, roles, and the one table of allowed moves.

Every status change a ``Ticket`` makes is looked up here; ``docs/lifecycle.md`` is generated
from this table (``python -m domain.lifecycle``), and so is the web app's
``web/src/lib/lifecycle.gen.ts`` (``--ts``); tests keep them identical.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import IllegalTransitionError, TicketClosedError, ValidationError


class Status(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    ADMIN = "admin"
    SYSTEM = "system"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class Trigger(StrEnum):
    """What makes a move happen."""

    COMMAND = "status command"  # POST /api/tickets/{id}/status
    ASSIGN = "assignment"  # an agent is assigned (manually or by policy)
    UNASSIGN = "unassignment"  # the assigned agent is removed
    CUSTOMER_REPLY = "customer reply"  # the customer posts a public message


@dataclass(frozen=True)
class Transition:
    source: Status
    target: Status
    trigger: Trigger
    roles: frozenset[Role]
    note: str = ""


S, R, T = Status, Role, Trigger
_STAFF = frozenset({R.AGENT, R.ADMIN})
_STAFF_SYSTEM = frozenset({R.AGENT, R.ADMIN, R.SYSTEM})
_EVERYONE = frozenset({R.CUSTOMER, R.AGENT, R.ADMIN, R.SYSTEM})

TRANSITIONS: tuple[Transition, ...] = (
    # Assignment moves a fresh ticket into the queue of an agent.
    Transition(S.OPEN, S.ASSIGNED, T.ASSIGN, _STAFF_SYSTEM, "an agent is assigned"),
    Transition(S.ASSIGNED, S.OPEN, T.UNASSIGN, _STAFF_SYSTEM, "the agent is removed"),
    Transition(S.IN_PROGRESS, S.OPEN, T.UNASSIGN, _STAFF_SYSTEM, "the agent is removed"),
    Transition(S.WAITING_ON_CUSTOMER, S.OPEN, T.UNASSIGN, _STAFF_SYSTEM, "the agent is removed"),
    # Work.
    Transition(S.ASSIGNED, S.IN_PROGRESS, T.COMMAND, _STAFF, "the agent starts work"),
    Transition(S.IN_PROGRESS, S.WAITING_ON_CUSTOMER, T.COMMAND, _STAFF, "agent asks the customer"),
    Transition(S.WAITING_ON_CUSTOMER, S.IN_PROGRESS, T.COMMAND, _STAFF, "agent resumes work"),
    Transition(
        S.WAITING_ON_CUSTOMER,
        S.IN_PROGRESS,
        T.CUSTOMER_REPLY,
        frozenset({R.CUSTOMER}),
        "the customer answers",
    ),
    # Resolution: staff resolve from any working state; a customer may say it is solved.
    Transition(S.OPEN, S.RESOLVED, T.COMMAND, _STAFF | {R.CUSTOMER}),
    Transition(S.ASSIGNED, S.RESOLVED, T.COMMAND, _STAFF | {R.CUSTOMER}),
    Transition(S.IN_PROGRESS, S.RESOLVED, T.COMMAND, _STAFF | {R.CUSTOMER}),
    Transition(S.WAITING_ON_CUSTOMER, S.RESOLVED, T.COMMAND, _STAFF | {R.CUSTOMER}),
    # Reopening a resolved ticket: a customer reply, or an explicit reopen.
    Transition(
        S.RESOLVED,
        S.IN_PROGRESS,
        T.CUSTOMER_REPLY,
        frozenset({R.CUSTOMER}),
        "reopened by the customer's reply (agent still assigned)",
    ),
    Transition(
        S.RESOLVED,
        S.OPEN,
        T.CUSTOMER_REPLY,
        frozenset({R.CUSTOMER}),
        "reopened by the customer's reply (no agent assigned)",
    ),
    Transition(
        S.RESOLVED, S.IN_PROGRESS, T.COMMAND, _STAFF | {R.CUSTOMER}, "reopen (agent assigned)"
    ),
    Transition(S.RESOLVED, S.OPEN, T.COMMAND, _STAFF | {R.CUSTOMER}, "reopen (no agent assigned)"),
    # Closing: a resolved ticket is closed by anyone (the system after a quiet period);
    # an admin may close any open ticket outright (spam, duplicates).
    Transition(S.RESOLVED, S.CLOSED, T.COMMAND, _EVERYONE),
    Transition(S.OPEN, S.CLOSED, T.COMMAND, frozenset({R.ADMIN})),
    Transition(S.ASSIGNED, S.CLOSED, T.COMMAND, frozenset({R.ADMIN})),
    Transition(S.IN_PROGRESS, S.CLOSED, T.COMMAND, frozenset({R.ADMIN})),
    Transition(S.WAITING_ON_CUSTOMER, S.CLOSED, T.COMMAND, frozenset({R.ADMIN})),
)

_BY_KEY: dict[tuple[Status, Status, Trigger], Transition] = {
    (t.source, t.target, t.trigger): t for t in TRANSITIONS
}


def find_transition(source: Status, target: Status, trigger: Trigger) -> Transition | None:
    return _BY_KEY.get((source, target, trigger))


def check_transition(source: Status, target: Status, trigger: Trigger, role: Role) -> Transition:
    """Return the table row allowing this move, or raise the domain error that explains why not."""
    if source is Status.CLOSED:
        raise TicketClosedError("A closed ticket cannot change any more.", status=source.value)
    if source is target:
        raise IllegalTransitionError(
            f"The ticket is already {source.label}.", source=source.value, target=target.value
        )
    row = find_transition(source, target, trigger)
    if row is None:
        raise IllegalTransitionError(
            f"A ticket cannot move from {source.label} to {target.label} by {trigger.value}.",
            source=source.value,
            target=target.value,
        )
    if role not in row.roles:
        raise IllegalTransitionError(
            f"{_article(role.value)} {role.value} may not move a ticket from {source.label} "
            f"to {target.label}.",
            source=source.value,
            target=target.value,
            role=role.value,
        )
    return row


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def parse_status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise ValidationError(f"Unknown status {value!r}; expected one of {allowed}.") from None


def parse_priority(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        raise ValidationError(f"Unknown priority {value!r}; expected one of {allowed}.") from None


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(f"Unknown role {value!r}.") from None


def render_markdown() -> str:
    """The lifecycle table as Markdown, the body of ``docs/lifecycle.md``."""
    order = {r: i for i, r in enumerate(Role)}
    lines = [
        "# Ticket lifecycle",
        "",
        "Generated from `domain/lifecycle.py` by `python -m domain.lifecycle > docs/lifecycle.md`;",
        "a unit test fails when the two differ. Every status change a ticket makes is one row of",
        "this table; any other move raises `IllegalTransitionError` (HTTP 409) and stores nothing.",
        "**Closed is final**: no status change, message, edit or assignment is accepted on a",
        "closed ticket (`TicketClosedError`).",
        "",
        "States: " + ", ".join(f"**{s.label}**" for s in Status) + ".",
        "",
        "| from | to | trigger | who may | note |",
        "|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        roles = ", ".join(r.value for r in sorted(t.roles, key=order.__getitem__))
        lines.append(
            f"| {t.source.label} | {t.target.label} | {t.trigger.value} | {roles} | {t.note} |"
        )
    lines += [
        "",
        "Triggers:",
        "",
        '- **status command**: `POST /api/tickets/{id}/status {"status": ..., "reason": ...}`.',
        "- **assignment / unassignment**: `POST /api/tickets/{id}/assign`. Assigning a ticket that",
        "  is already past Assigned (re-assignment) keeps its status; removing the agent from an",
        "  Assigned, In Progress or Waiting on Customer ticket returns it to Open. A Resolved",
        "  ticket keeps its status when the agent changes.",
        "- Invariant (property-tested): Assigned, In Progress and Waiting on Customer always have",
        "  an agent; Open never has one. So asking to reopen a Resolved ticket (`open` or",
        "  `in_progress`) reopens it as In Progress when an agent is assigned, Open otherwise.",
        "- **customer reply**: a public message by the ticket's customer. On Waiting on Customer",
        "  it moves the ticket back to In Progress; on Resolved it reopens the ticket (In Progress",
        "  when an agent is still assigned, Open otherwise). Replies in other states change",
        "  nothing.",
        "",
    ]
    return "\n".join(lines)


def render_typescript() -> str:
    """The lifecycle table as a TypeScript module, the web app's ``src/lib/lifecycle.gen.ts``."""
    order = {r: i for i, r in enumerate(Role)}

    def strings(values: Iterable[str]) -> str:
        return ", ".join(json.dumps(v) for v in values)

    lines = [
        "// Generated from domain/lifecycle.py by `make web-generate`",
        "// (python -m domain.lifecycle --ts); a unit test fails when the two differ. Do not edit.",
        "",
        f"export const STATUSES = [{strings(Status)}] as const;",
        f"export const PRIORITIES = [{strings(Priority)}] as const;",
        f"export const ROLES = [{strings(Role)}] as const;",
        f"export const TRIGGERS = [{strings(Trigger)}] as const;",
        "",
        "export interface Transition {",
        "  from: (typeof STATUSES)[number];",
        "  to: (typeof STATUSES)[number];",
        "  trigger: (typeof TRIGGERS)[number];",
        "  roles: readonly (typeof ROLES)[number][];",
        "  note: string;",
        "}",
        "",
        "/** Every status change a ticket may make; any other move is refused (HTTP 409). */",
        "export const TRANSITIONS: readonly Transition[] = [",
    ]
    for t in TRANSITIONS:
        roles = strings(r.value for r in sorted(t.roles, key=order.__getitem__))
        lines.append(
            f"  {{ from: {json.dumps(t.source.value)}, to: {json.dumps(t.target.value)}, "
            f"trigger: {json.dumps(t.trigger.value)}, roles: [{roles}], "
            f"note: {json.dumps(t.note)} }},"
        )
    lines += ["];", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--ts"]:
        print(render_typescript(), end="")  # noqa: T201
    elif sys.argv[1:]:
        sys.exit("usage: python -m domain.lifecycle [--ts]")
    else:
        print(render_markdown(), end="")  # noqa: T201
