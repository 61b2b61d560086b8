"""The Macro aggregate: a canned reply with placeholders and optional ticket changes.

A macro is *shared* (kept by admins, offered to all staff) or *personal* (kept by the agent
who made it, offered only to them). Its body may use the placeholders of
``domain.placeholders``; applying it also asks for a status, tags to add and an assignee,
each performed later through the ticket's own commands (which decide each one). Creating,
changing and deleting a macro are events naming who did it.
"""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.errors import IllegalTransitionError, PermissionDeniedError, ValidationError
from domain.lifecycle import Role, Status
from domain.placeholders import PLACEHOLDERS, unknown_placeholders
from domain.ticket import clean_tags

NAME_MAX = 80
BODY_MAX = 5000
ASSIGN_ME = "me"  # assign the ticket to whoever applies the macro


class MacroContent(TypedDict):
    """What a macro says and does, as a command gives it (checked by ``clean_content``)."""

    name: object
    body: object
    status: object
    add_tags: object
    assign_to: object


def _text(value: object, field: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string.", field=field)
    text = value.strip()
    if not text:
        raise ValidationError(f"{field} must not be empty.", field=field)
    if len(text) > max_len:
        raise ValidationError(f"{field} is longer than {max_len} characters.", field=field)
    return text


def clean_content(
    *, name: object, body: object, status: object, add_tags: object, assign_to: object
) -> dict[str, Any]:
    """A macro's content as stored, or the first ``ValidationError`` (naming its field)."""
    clean_name = " ".join(_text(name, "name", NAME_MAX).split())
    clean_body = _text(body, "body", BODY_MAX)
    unknown = unknown_placeholders(clean_body)
    if unknown:
        raise ValidationError(
            f"Unknown placeholder {{{{{unknown[0]}}}}}; known: "
            + ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
            + ".",
            field="body",
        )
    if status is not None and status not in {s.value for s in Status}:
        raise ValidationError(f"Unknown status {status!r}.", field="status")
    try:
        tags = clean_tags(add_tags)
    except ValidationError as error:
        raise ValidationError(error.detail, field="add_tags") from None
    if assign_to is not None and not (
        assign_to == ASSIGN_ME
        or (
            isinstance(assign_to, str)
            and assign_to.isascii()
            and assign_to.isdigit()
            and len(assign_to) <= 18
        )
    ):
        raise ValidationError('assign_to is "me", an agent\'s id or null.', field="assign_to")
    return {
        "name": clean_name,
        "body": clean_body,
        "status": status,
        "add_tags": tags,
        "assign_to": assign_to,
    }


class Macro(Aggregate):
    TOPIC = "deskstream.macro:Macro"

    class Event(Aggregate.Event):
        TOPIC = "deskstream.macro:Macro.Event"

    class MacroCreated(Event, Aggregate.Created):
        TOPIC = "deskstream.macro:MacroCreated"

        shared: bool
        owner_id: str
        name: str
        body: str
        status: str | None
        add_tags: list[str]
        assign_to: str | None
        actor_id: str
        actor_role: str

    class MacroChanged(Event):
        """The whole new content (a reader needs no earlier event to show it)."""

        TOPIC = "deskstream.macro:MacroChanged"

        name: str
        body: str
        status: str | None
        add_tags: list[str]
        assign_to: str | None
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            macro: Macro = aggregate
            macro.content = {
                "name": self.name,
                "body": self.body,
                "status": self.status,
                "add_tags": list(self.add_tags),
                "assign_to": self.assign_to,
            }

    class MacroDeleted(Event):
        TOPIC = "deskstream.macro:MacroDeleted"

        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            macro: Macro = aggregate
            macro.deleted = True

    def __init__(
        self,
        shared: bool,
        owner_id: str,
        name: str,
        body: str,
        status: str | None,
        add_tags: list[str],
        assign_to: str | None,
        actor_id: str,
        actor_role: str,
    ) -> None:
        self.shared = shared
        self.owner_id = owner_id
        self.content: dict[str, Any] = {
            "name": name,
            "body": body,
            "status": status,
            "add_tags": list(add_tags),
            "assign_to": assign_to,
        }
        self.deleted = False

    @classmethod
    def create(
        cls,
        *,
        shared: bool,
        actor_id: str,
        actor_role: Role,
        name: object,
        body: object,
        status: object = None,
        add_tags: object = (),
        assign_to: object = None,
        macro_id: UUID | None = None,
    ) -> Macro:
        _require_staff(actor_role)
        if shared and actor_role is not Role.ADMIN:
            raise PermissionDeniedError("Only admins keep shared macros.")
        return cls._create(
            cls.MacroCreated,
            id=macro_id or uuid4(),
            shared=shared,
            owner_id=actor_id,
            actor_id=actor_id,
            actor_role=actor_role.value,
            **clean_content(
                name=name, body=body, status=status, add_tags=add_tags, assign_to=assign_to
            ),
        )

    def may_edit(self, actor_id: str, actor_role: Role) -> bool:
        """Admins edit shared macros; only its owner edits a personal one."""
        if self.shared:
            return actor_role is Role.ADMIN
        return actor_id == self.owner_id and actor_role in (Role.AGENT, Role.ADMIN)

    def may_see(self, actor_id: str, actor_role: Role) -> bool:
        if actor_role not in (Role.AGENT, Role.ADMIN):
            return False
        return self.shared or actor_id == self.owner_id

    def change(
        self,
        *,
        actor_id: str,
        actor_role: Role,
        name: object,
        body: object,
        status: object,
        add_tags: object,
        assign_to: object,
    ) -> None:
        self._check_edit(actor_id, actor_role)
        new = clean_content(
            name=name, body=body, status=status, add_tags=add_tags, assign_to=assign_to
        )
        if new != self.content:
            self.trigger_event(
                self.MacroChanged, actor_id=actor_id, actor_role=actor_role.value, **new
            )

    def delete(self, *, actor_id: str, actor_role: Role) -> None:
        self._check_edit(actor_id, actor_role)
        self.trigger_event(self.MacroDeleted, actor_id=actor_id, actor_role=actor_role.value)

    def _check_edit(self, actor_id: str, actor_role: Role) -> None:
        if self.deleted:
            raise IllegalTransitionError("This macro was deleted.")
        if not self.may_edit(actor_id, actor_role):
            raise PermissionDeniedError(
                "Only admins change shared macros."
                if self.shared
                else "Only its owner changes a personal macro."
            )


def _require_staff(actor_role: Role) -> None:
    if actor_role not in (Role.AGENT, Role.ADMIN):
        raise PermissionDeniedError("Only agents and admins keep macros.")
