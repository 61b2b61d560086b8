"""The Ticket aggregate: a customer's request and everything that happens to it.

Public methods check the rules (lifecycle table, roles, stale replies) and then trigger an
event; each event's ``apply`` only assigns state, so replaying stored events rebuilds the
ticket exactly. Stored topics are explicit (``deskstream.ticket:...``) so classes can move.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain import clock
from domain.attachment import (
    Attachment,
    AttachmentLimitError,
    AttachmentLimits,
    AttachmentQuarantinedError,
    AttachmentScanningError,
    ScanStatus,
    check_file,
    clean_file_name,
    parse_verdict,
)
from domain.draft import (
    DRAFT_TEXT_MAX,
    REASON_MAX,
    Draft,
    DraftStatus,
    parse_outcome,
    parse_source,
)
from domain.errors import (
    ForeignTicketError,
    NotFoundError,
    PermissionDeniedError,
    StaleReplyError,
    TicketClosedError,
    ValidationError,
)
from domain.lifecycle import (
    Priority,
    Role,
    Status,
    Trigger,
    check_transition,
    find_transition,
    parse_priority,
    parse_status,
)
from domain.sla import SlaTarget, parse_target

SUBJECT_MAX = 200
DESCRIPTION_MAX = 20_000
BODY_MAX = 20_000
TAG_MAX = 40
TAGS_MAX = 20
ATTACHMENTS_MAX = 20
LANGUAGE_MAX = 16
COMMENT_MAX = 2000  # a satisfaction rating's comment


@dataclass(frozen=True)
class Message:
    """One message of a ticket's conversation, as the aggregate keeps it."""

    id: UUID
    version: int
    author_id: str
    author_role: str
    body: str
    internal: bool
    attachments: tuple[dict[str, Any], ...]
    posted_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "version": self.version,
            "author_id": self.author_id,
            "author_role": self.author_role,
            "body": self.body,
            "internal": self.internal,
            "attachments": [dict(a) for a in self.attachments],
            "posted_at": self.posted_at.isoformat(),
        }


@dataclass
class _Actor:
    id: str
    role: Role


def _clean_text(value: object, name: str, max_len: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string.", field=name)
    text = value.strip()
    if required and not text:
        raise ValidationError(f"{name} must not be empty.", field=name)
    if len(text) > max_len:
        raise ValidationError(f"{name} is longer than {max_len} characters.", field=name)
    return text


def clean_tags(tags: object) -> list[str]:
    if not isinstance(tags, list | tuple):
        raise ValidationError("tags must be a list of strings.", field="tags")
    if len(tags) > TAGS_MAX:
        raise ValidationError(f"At most {TAGS_MAX} tags.", field="tags")
    cleaned: list[str] = []
    for tag in tags:
        text = _clean_text(tag, "tag", TAG_MAX).lower()
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


def clean_attachments(attachments: object) -> list[dict[str, Any]]:
    """Attachment metadata (the files themselves arrive with a later issue)."""
    if not isinstance(attachments, list | tuple):
        raise ValidationError("attachments must be a list.", field="attachments")
    if len(attachments) > ATTACHMENTS_MAX:
        raise ValidationError(f"At most {ATTACHMENTS_MAX} attachments.", field="attachments")
    cleaned = []
    for item in attachments:
        if not isinstance(item, dict):
            raise ValidationError("Each attachment is an object.", field="attachments")
        name = _clean_text(item.get("name"), "attachment name", 255)
        content_type = _clean_text(
            item.get("content_type", "application/octet-stream"), "content_type", 127
        )
        size = item.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValidationError(
                "attachment size must be a non-negative integer.", field="attachments"
            )
        cleaned.append({"name": name, "content_type": content_type, "size": size})
    return cleaned


class Ticket(Aggregate):
    TOPIC = "deskstream.ticket:Ticket"

    # ------------------------------------------------------------------ events
    class Event(Aggregate.Event):
        TOPIC = "deskstream.ticket:Ticket.Event"

        def mutate(self, aggregate: Any) -> Any:
            # Every event, whatever its ``apply``: the versions of the public ones give the
            # customer's numbering (``public_version``), rebuilt the same on every replay.
            ticket = super().mutate(aggregate)
            if ticket is not None and is_public(self):
                ticket.public_versions.append(self.originator_version)
            return ticket

        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()  # the wall clock, unless a seed of past history set it

    class Created(Event, Aggregate.Created):
        TOPIC = "deskstream.ticket:Ticket.Created"

    class TicketOpened(Created):
        """A customer (or staff on their behalf) opened a ticket.

        v2 added ``language``; tickets stored in v1 shape are upcast to ``"en"``.
        """

        TOPIC = "deskstream.ticket:TicketOpened"
        class_version = 2

        customer_id: str
        subject: str
        description: str
        priority: str
        tags: list[str]
        language: str
        actor_id: str
        actor_role: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["language"] = "en"

    class MessagePosted(Event):
        TOPIC = "deskstream.ticket:MessagePosted"

        message_id: UUID
        author_id: str
        author_role: str
        body: str
        internal: bool
        attachments: list[dict[str, Any]]

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            message = Message(
                id=self.message_id,
                version=self.originator_version,
                author_id=self.author_id,
                author_role=self.author_role,
                body=self.body,
                internal=self.internal,
                attachments=tuple(self.attachments),
                posted_at=self.timestamp,
            )
            ticket.messages.append(message)
            ticket.last_message_at = self.timestamp
            if not self.internal:
                ticket.last_public_message_version = self.originator_version

    class StatusChanged(Event):
        TOPIC = "deskstream.ticket:StatusChanged"

        from_status: str
        to_status: str
        actor_id: str
        actor_role: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.status = Status(self.to_status)
            if ticket.status is Status.CLOSED:
                ticket.closed_at = self.timestamp
            if ticket.status is Status.RESOLVED:
                ticket.resolved_at = self.timestamp

    class AgentAssigned(Event):
        TOPIC = "deskstream.ticket:AgentAssigned"

        agent_id: str
        previous_agent_id: str | None
        actor_id: str
        actor_role: str
        policy: str  # "manual" or the automatic policy's name
        reason: str

        @property
        def public_reason(self) -> str:
            """The reason the ticket's customer reads: an automatic decision's own reason
            tells staff workload and availability, so theirs is neutral."""
            return self.reason if self.policy == "manual" else "assigned automatically"

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.assigned_agent_id = self.agent_id

    class AgentUnassigned(Event):
        TOPIC = "deskstream.ticket:AgentUnassigned"

        agent_id: str
        actor_id: str
        actor_role: str
        reason: str

        @property
        def public_reason(self) -> str:
            """The reason the ticket's customer reads (automation's tells who went offline)."""
            if self.actor_role == Role.SYSTEM.value:
                return "unassigned automatically"
            return self.reason

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.assigned_agent_id = None

    class PriorityChanged(Event):
        TOPIC = "deskstream.ticket:PriorityChanged"

        from_priority: str
        to_priority: str
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.priority = Priority(self.to_priority)

    class TeamChanged(Event):
        """The team the ticket belongs to (automatic assignment picks among its members)."""

        TOPIC = "deskstream.ticket:TeamChanged"

        from_team_id: str | None
        to_team_id: str | None
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.team_id = self.to_team_id

    class TicketEdited(Event):
        TOPIC = "deskstream.ticket:TicketEdited"

        subject: str
        description: str
        tags: list[str]
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.subject = self.subject
            ticket.description = self.description
            ticket.tags = list(self.tags)

    class SlaBreached(Event):
        """An SLA target's deadline passed before the target was met (recorded once per
        target, by automation; see ``domain.sla``)."""

        TOPIC = "deskstream.ticket:SlaBreached"

        target: str  # "first_response" | "resolution"
        deadline: datetime
        breached_at: datetime  # when the check found it
        priority: str  # the priority whose rule applied
        policy: str  # the rule, e.g. "urgent: first response 1 h, resolution 8 h of ..."
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.sla_breaches = {**ticket.sla_breaches, self.target: self.deadline}

    class SlaReminderDue(Event):
        """An SLA target's deadline is near and the target is still unmet: the assigned agent
        is reminded (recorded once per target and deadline, by automation)."""

        TOPIC = "deskstream.ticket:SlaReminderDue"

        target: str  # "first_response" | "resolution"
        deadline: datetime
        reminded_at: datetime  # when the check found it
        minutes_before: int  # the reminder setting in force
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.sla_reminders = {**ticket.sla_reminders, self.target: self.deadline}

    class SatisfactionRated(Event):
        """The customer rated a resolved (or closed) ticket, in the app or from the e-mail."""

        TOPIC = "deskstream.ticket:SatisfactionRated"

        rating: int  # 1 (very bad) .. 5 (very good)
        comment: str
        channel: str  # "app" | "email"
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.satisfaction = (self.rating, self.comment)

    class AttachmentUploaded(Event):
        """A file was stored (encrypted) for the ticket, or for one of its messages
        (``message_id``); nobody is offered it before ``AttachmentScanned`` says clean."""

        TOPIC = "deskstream.ticket:AttachmentUploaded"

        attachment_id: UUID
        name: str  # cleaned
        content_type: str  # detected from the content
        size: int
        message_id: UUID | None
        internal: bool  # staff only (an internal note's file, or a staff-only ticket file)
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.attachments[self.attachment_id] = Attachment(
                id=self.attachment_id,
                name=self.name,
                content_type=self.content_type,
                size=self.size,
                uploader_id=self.actor_id,
                uploader_role=self.actor_role,
                message_id=self.message_id,
                internal=self.internal,
            )

    class AttachmentScanned(Event):
        """The virus scanner's verdict on a file: ``clean`` (offered from now on) or
        ``infected`` (quarantined, never served). ``internal`` and ``message_id`` repeat the
        upload's, so readers of this event alone know who may see it."""

        TOPIC = "deskstream.ticket:AttachmentScanned"

        attachment_id: UUID
        verdict: str  # "clean" | "infected"
        signature: str  # what the scanner found ("" when clean)
        message_id: UUID | None
        internal: bool
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            before = ticket.attachments[self.attachment_id]
            ticket.attachments[self.attachment_id] = replace(
                before, status=ScanStatus(self.verdict), signature=self.signature
            )

    class DraftRequested(Event):
        """An agent asked for an AI draft reply (staff bookkeeping: never public)."""

        TOPIC = "deskstream.ticket:DraftRequested"

        draft_id: UUID
        language: str  # the language the agent wants the draft in
        allow_internal: bool  # the agent allows internal notes' content in the draft
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.drafts[self.draft_id] = Draft(
                id=self.draft_id,
                requested_by=self.actor_id,
                requested_version=self.originator_version - 1,
                language=self.language,
                allow_internal=self.allow_internal,
            )
            ticket.draft_versions.add(self.originator_version)

    class DraftGenerated(Event):
        """The draft came back (or was refused, or failed), with its provenance: where it
        came from, which model, the hash of the prompt, tokens, latency and cost."""

        TOPIC = "deskstream.ticket:DraftGenerated"

        draft_id: UUID
        outcome: str  # ready | refused | failed
        text: str  # the draft ("" unless ready)
        reason: str  # why it was refused or failed
        source: str  # model | retrieval
        model: str
        prompt_version: str
        prompt_hash: str
        context_version: int  # the ticket version the prompt was built from
        prompt_tokens: int
        completion_tokens: int
        latency_ms: int
        cost_usd: float
        cached: bool
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.drafts[self.draft_id] = replace(
                ticket.drafts[self.draft_id],
                status=DraftStatus(self.outcome),
                text=self.text,
                reason=self.reason,
                source=self.source,
                model=self.model,
            )
            ticket.draft_versions.add(self.originator_version)

    class ReplySentFromDraft(Event):
        """The agent sent a reply that started from a draft: how much they changed it (the
        Levenshtein distance between the draft and the reply sent)."""

        TOPIC = "deskstream.ticket:ReplySentFromDraft"

        draft_id: UUID
        message_id: UUID
        edit_distance: int
        draft_length: int
        reply_length: int
        actor_id: str
        actor_role: str

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.drafts[self.draft_id] = replace(
                ticket.drafts[self.draft_id], sent_message_id=self.message_id
            )
            ticket.draft_versions.add(self.originator_version)

    # ------------------------------------------------------------------ state
    def __init__(
        self,
        customer_id: str,
        subject: str,
        description: str,
        priority: str,
        tags: list[str],
        language: str,
    ) -> None:
        self.customer_id = customer_id
        self.subject = subject
        self.description = description
        self.priority = Priority(priority)
        self.tags = list(tags)
        self.language = language
        self.status = Status.OPEN
        self.assigned_agent_id: str | None = None
        self.messages: list[Message] = []
        self.last_public_message_version = 0
        # The real versions of the public events, in order: a customer's version N is the
        # ticket after the N-th of them (``public_version``, ``real_version``).
        self.public_versions: list[int] = []
        self.last_message_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.sla_breaches: dict[str, datetime] = {}  # target -> the deadline that passed
        self.sla_reminders: dict[str, datetime] = {}  # target -> the deadline reminded of
        self.satisfaction: tuple[int, str] | None = None  # (rating, comment)
        self.attachments: dict[UUID, Attachment] = {}
        self.drafts: dict[UUID, Draft] = {}
        self.draft_versions: set[int] = set()  # the versions of draft events
        self.team_id: str | None = None

    # ------------------------------------------------------------------ commands
    @classmethod
    def open(
        cls,
        *,
        customer_id: str,
        subject: object,
        description: object,
        priority: object = "medium",
        tags: object = (),
        language: object = "en",
        actor_id: str,
        actor_role: Role,
        ticket_id: UUID | None = None,
    ) -> Ticket:
        if actor_role is Role.CUSTOMER and actor_id != customer_id:
            raise PermissionDeniedError("A customer opens tickets only for themselves.")
        if not customer_id:
            raise ValidationError("customer_id is required.", field="customer_id")
        return cls._create(
            cls.TicketOpened,
            id=ticket_id or uuid4(),
            customer_id=customer_id,
            subject=_clean_text(subject, "subject", SUBJECT_MAX),
            description=_clean_text(description, "description", DESCRIPTION_MAX, required=False),
            priority=_parse_priority(priority).value,
            tags=clean_tags(tags),
            language=_clean_text(language, "language", LANGUAGE_MAX).lower(),
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def post_message(
        self,
        *,
        author_id: str,
        author_role: Role,
        body: object,
        internal: bool = False,
        attachments: object = (),
        seen_version: int | None = None,
        message_id: UUID | None = None,
        draft_id: UUID | None = None,
        edit_distance: Callable[[str, str], int] | None = None,
    ) -> None:
        """Add a message; a customer's public reply may also move the ticket (see the table).
        A public reply may name the draft it started from (the author's own, ready and not
        sent yet): ``ReplySentFromDraft`` then records how much it was edited."""
        actor = self._check_actor(author_id, author_role)
        self._require_not_closed()
        if internal and actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents and admins write internal notes.")
        text = _clean_text(body, "body", BODY_MAX)
        files = clean_attachments(attachments)
        draft = None if draft_id is None else self._sendable_draft(draft_id, actor, internal)
        if not internal and seen_version is not None:
            # A customer counts public events only (``public_version``).
            customer = actor.role is Role.CUSTOMER
            seen = self.real_version(seen_version) if customer else seen_version
            # Messages the author wrote themselves are not news to them.
            newer = [m for m in self.public_messages_after(seen) if m.author_id != author_id]
            if newer:
                raise StaleReplyError(
                    "The ticket received new public messages since version "
                    f"{seen_version}; read them before replying.",
                    current_version=self.public_version if customer else self.version,
                    messages=[self.message_as_seen(m, customer=customer) for m in newer],
                )
        self.trigger_event(
            self.MessagePosted,
            message_id=message_id or uuid4(),
            author_id=author_id,
            author_role=author_role.value,
            body=text,
            internal=bool(internal),
            attachments=files,
        )
        if draft is not None:
            sent: Message = self.messages[-1]
            distance = edit_distance or levenshtein
            self.trigger_event(
                self.ReplySentFromDraft,
                draft_id=draft.id,
                message_id=sent.id,
                edit_distance=int(distance(draft.text, text)),
                draft_length=len(draft.text),
                reply_length=len(text),
                actor_id=actor.id,
                actor_role=actor.role.value,
            )
        if not internal and actor.role is Role.CUSTOMER:
            self._on_customer_reply(actor)

    def change_status(
        self, *, target: str, actor_id: str, actor_role: Role, reason: str = ""
    ) -> None:
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        to = parse_status(target)
        if self.status is Status.RESOLVED and to in (Status.OPEN, Status.IN_PROGRESS):
            # Reopening, like a customer reply, goes back to the assigned agent (In Progress) or
            # to the unassigned queue (Open); asking for the other would break the invariant.
            to = Status.IN_PROGRESS if self.assigned_agent_id else Status.OPEN
        check_transition(self.status, to, Trigger.COMMAND, actor.role)
        self._change_status(to, actor, _clean_text(reason, "reason", 500, required=False))

    def assign(
        self,
        *,
        agent_id: str,
        actor_id: str,
        actor_role: Role,
        policy: str = "manual",
        reason: str = "",
    ) -> None:
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents, admins and automation assign tickets.")
        if not agent_id:
            raise ValidationError("agent_id is required.", field="agent_id")
        if agent_id == self.assigned_agent_id:
            raise ValidationError("The ticket is already assigned to this agent.", field="agent_id")
        if self.status is Status.OPEN:
            check_transition(self.status, Status.ASSIGNED, Trigger.ASSIGN, actor.role)
        self.trigger_event(
            self.AgentAssigned,
            agent_id=agent_id,
            previous_agent_id=self.assigned_agent_id,
            actor_id=actor.id,
            actor_role=actor.role.value,
            policy=policy,
            reason=reason or ("assigned by " + actor.role.value),
        )
        if self.status is Status.OPEN:
            self._change_status(Status.ASSIGNED, actor, "agent assigned")

    def unassign(self, *, actor_id: str, actor_role: Role, reason: str = "") -> None:
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents, admins and automation unassign tickets.")
        if self.assigned_agent_id is None:
            raise ValidationError("The ticket has no assigned agent.", field="agent_id")
        self.trigger_event(
            self.AgentUnassigned,
            agent_id=self.assigned_agent_id,
            actor_id=actor.id,
            actor_role=actor.role.value,
            reason=reason or ("unassigned by " + actor.role.value),
        )
        if find_transition(self.status, Status.OPEN, Trigger.UNASSIGN):
            self._change_status(Status.OPEN, actor, "agent unassigned")

    def change_priority(self, *, priority: object, actor_id: str, actor_role: Role) -> None:
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents and admins change the priority.")
        new = _parse_priority(priority)
        if new is self.priority:
            return
        self.trigger_event(
            self.PriorityChanged,
            from_priority=self.priority.value,
            to_priority=new.value,
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def set_team(self, *, team_id: str | None, actor_id: str, actor_role: Role) -> None:
        """Put the ticket in a team (``None``: in none). Whether the team exists and is not
        archived is the caller's to check: the ticket knows no teams."""
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents and admins route tickets to a team.")
        if team_id == self.team_id:
            return
        self.trigger_event(
            self.TeamChanged,
            from_team_id=self.team_id,
            to_team_id=team_id,
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def edit(
        self,
        *,
        actor_id: str,
        actor_role: Role,
        subject: object = None,
        description: object = None,
        tags: object = None,
    ) -> None:
        """Change subject, description and/or tags (``None`` keeps the current value)."""
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if actor.role is Role.CUSTOMER and tags is not None:
            raise PermissionDeniedError("Only agents and admins set tags.")
        new_subject = (
            self.subject if subject is None else _clean_text(subject, "subject", SUBJECT_MAX)
        )
        new_description = (
            self.description
            if description is None
            else _clean_text(description, "description", DESCRIPTION_MAX, required=False)
        )
        new_tags = self.tags if tags is None else clean_tags(tags)
        if (new_subject, new_description, new_tags) == (self.subject, self.description, self.tags):
            return
        self.trigger_event(
            self.TicketEdited,
            subject=new_subject,
            description=new_description,
            tags=new_tags,
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def record_sla_breach(
        self,
        *,
        target: object,
        deadline: datetime,
        breached_at: datetime,
        priority: str,
        policy: str,
        actor_id: str,
        actor_role: Role,
    ) -> None:
        """Record that a target's deadline passed unmet. Idempotent: a target already recorded,
        or met by its deadline (a staff reply, resolved or closed), stores nothing. Closed
        tickets still accept it: it records a fact about the past, it changes nothing."""
        if actor_role not in (Role.SYSTEM, Role.ADMIN):
            raise PermissionDeniedError("Only automation records SLA breaches.")
        which = parse_target(target)
        if deadline.tzinfo is None or breached_at.tzinfo is None:
            raise ValidationError("deadline and breached_at need a time zone.", field="deadline")
        if which.value in self.sla_breaches or self._met_by(which, deadline):
            return
        self.trigger_event(
            self.SlaBreached,
            target=which.value,
            deadline=deadline,
            breached_at=breached_at,
            priority=_parse_priority(priority).value,
            policy=_clean_text(policy, "policy", 500, required=False),
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def record_sla_reminder(
        self,
        *,
        target: object,
        deadline: datetime,
        reminded_at: datetime,
        minutes_before: int,
        actor_id: str,
        actor_role: Role,
    ) -> None:
        """Record that a target's deadline is near. Idempotent per deadline: a reminder for
        this very deadline, a target already met or breached, or a closed ticket stores
        nothing (a new deadline, after a pause or a priority change, gets its own)."""
        if actor_role not in (Role.SYSTEM, Role.ADMIN):
            raise PermissionDeniedError("Only automation records SLA reminders.")
        which = parse_target(target)
        if deadline.tzinfo is None or reminded_at.tzinfo is None:
            raise ValidationError("deadline and reminded_at need a time zone.", field="deadline")
        if not isinstance(minutes_before, int) or minutes_before < 0:
            raise ValidationError("minutes_before must be >= 0.", field="minutes_before")
        if (
            self.sla_reminders.get(which.value) == deadline
            or which.value in self.sla_breaches
            or self.status is Status.CLOSED
            or self._met_by(which, deadline)
        ):
            return
        self.trigger_event(
            self.SlaReminderDue,
            target=which.value,
            deadline=deadline,
            reminded_at=reminded_at,
            minutes_before=minutes_before,
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def rate_satisfaction(
        self, *, rating: object, comment: object = "", channel: str, actor_id: str, actor_role: Role
    ) -> None:
        """The customer's rating of a resolved or closed ticket (they may change it; the same
        rating and comment again stores nothing, so a replayed e-mail link is harmless)."""
        actor = self._check_actor(actor_id, actor_role)
        if actor.role is not Role.CUSTOMER:
            raise PermissionDeniedError("Only the ticket's customer rates it.")
        if self.status not in (Status.RESOLVED, Status.CLOSED):
            raise ValidationError("A ticket is rated once it is resolved.", field="rating")
        value = parse_rating(rating)
        text = _clean_text(comment if comment is not None else "", "comment", COMMENT_MAX,
                           required=False)  # fmt: skip
        if channel not in ("app", "email"):
            raise ValidationError("channel is app or email.", field="channel")
        if self.satisfaction is not None:
            if channel == "email" and not text:
                text = self.satisfaction[1]  # a click on a rating link keeps the comment
            if self.satisfaction == (value, text):
                return
        self.trigger_event(
            self.SatisfactionRated,
            rating=value,
            comment=text,
            channel=channel,
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def upload_attachment(
        self,
        *,
        attachment_id: UUID,
        name: object,
        content_type: str,
        size: int,
        message_id: UUID | None,
        internal: bool,
        actor_id: str,
        actor_role: Role,
        limits: AttachmentLimits,
    ) -> None:
        """Record a stored file. On a message, only its author attaches, and the file is
        internal exactly when the message is; on the ticket itself, only staff mark a file
        internal. The size, type and count limits are checked here, for every way in."""
        actor = self._check_actor(actor_id, actor_role)
        self._require_not_closed()
        if attachment_id in self.attachments:
            raise ValidationError("This attachment exists already.", field="attachment_id")
        if internal and actor.role is Role.CUSTOMER:
            raise PermissionDeniedError("Only agents and admins attach internal files.")
        if message_id is not None:
            message = next((m for m in self.messages if m.id == message_id), None)
            if message is None or (message.internal and actor.role is Role.CUSTOMER):
                raise NotFoundError("No such message on this ticket.", field="message_id")
            if message.author_id != actor.id:
                raise PermissionDeniedError("Files are attached only to your own messages.")
            internal = message.internal
            on_message = [a for a in self.attachments.values() if a.message_id == message_id]
            if len(on_message) >= limits.per_message:
                raise AttachmentLimitError(
                    f"A message has at most {limits.per_message} files.",
                    field="file",
                    limit=limits.per_message,
                )
        if len(self.attachments) >= limits.per_ticket:
            raise AttachmentLimitError(
                f"A ticket has at most {limits.per_ticket} files.",
                field="file",
                limit=limits.per_ticket,
            )
        check_file(size, content_type, limits)
        self.trigger_event(
            self.AttachmentUploaded,
            attachment_id=attachment_id,
            name=clean_file_name(name),
            content_type=content_type,
            size=size,
            message_id=message_id,
            internal=bool(internal),
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def record_attachment_scan(
        self,
        *,
        attachment_id: UUID,
        verdict: object,
        signature: str,
        actor_id: str,
        actor_role: Role,
    ) -> None:
        """Record the scanner's verdict once (a repeated scan stores nothing). Closed
        tickets still take it: it is a fact about a file uploaded before."""
        if actor_role not in (Role.SYSTEM, Role.ADMIN):
            raise PermissionDeniedError("Only the scanner records scan results.")
        attachment = self._attachment(attachment_id)
        found = parse_verdict(verdict)
        if attachment.status is not ScanStatus.SCANNING:
            return
        self.trigger_event(
            self.AttachmentScanned,
            attachment_id=attachment_id,
            verdict=found.value,
            signature=signature[:500] if found is ScanStatus.INFECTED else "",
            message_id=attachment.message_id,
            internal=attachment.internal,
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def request_draft(
        self,
        *,
        draft_id: UUID,
        language: object,
        actor_id: str,
        actor_role: Role,
        allow_internal: bool = False,
    ) -> None:
        """An agent (or admin) asks for a draft reply; customers never see drafts."""
        actor = self._check_actor(actor_id, actor_role)
        if actor.role not in (Role.AGENT, Role.ADMIN):
            raise PermissionDeniedError("Only agents and admins ask for draft replies.")
        self._require_not_closed()
        if draft_id in self.drafts:
            raise ValidationError("This draft exists already.", field="draft_id")
        self.trigger_event(
            self.DraftRequested,
            draft_id=draft_id,
            language=_clean_text(language, "language", LANGUAGE_MAX).lower(),
            allow_internal=bool(allow_internal),
            actor_id=actor.id,
            actor_role=actor.role.value,
        )

    def record_draft(
        self,
        *,
        draft_id: UUID,
        outcome: object,
        text: str,
        reason: str,
        source: object,
        model: str,
        prompt_version: str,
        prompt_hash: str,
        context_version: int,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: int,
        cost_usd: float,
        cached: bool,
        actor_id: str,
        actor_role: Role,
    ) -> None:
        """Record what came back for a requested draft, once (a retried task records
        nothing more). A closed ticket still takes it: it is a fact about the request."""
        if actor_role not in (Role.SYSTEM, Role.ADMIN):
            raise PermissionDeniedError("Only the draft service records drafts.")
        draft = self.drafts.get(draft_id)
        if draft is None:
            raise NotFoundError("No such draft.", id=str(draft_id))
        if draft.status is not DraftStatus.REQUESTED:
            return
        status = parse_outcome(outcome)
        body = text.strip() if status is DraftStatus.READY else ""
        if status is DraftStatus.READY and not body:
            raise ValidationError("A ready draft has text.", field="text")
        numbers = (context_version, prompt_tokens, completion_tokens, latency_ms)
        if any(n < 0 for n in numbers) or cost_usd < 0:
            raise ValidationError("Counts, latency and cost are not negative.", field="tokens")
        self.trigger_event(
            self.DraftGenerated,
            draft_id=draft_id,
            outcome=status.value,
            text=body[:DRAFT_TEXT_MAX],
            reason=reason.strip()[:REASON_MAX],
            source=parse_source(source).value,
            model=model[:200],
            prompt_version=prompt_version[:50],
            prompt_hash=prompt_hash[:128],
            context_version=context_version,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
            cost_usd=float(cost_usd),
            cached=bool(cached),
            actor_id=actor_id,
            actor_role=actor_role.value,
        )

    def _met_by(self, target: SlaTarget, deadline: datetime) -> bool:
        if target is SlaTarget.FIRST_RESPONSE:
            return any(
                not m.internal
                and m.author_role in (Role.AGENT.value, Role.ADMIN.value)
                and m.posted_at <= deadline
                for m in self.messages
            )
        done = self.resolved_at if self.status is Status.RESOLVED else self.closed_at
        return (
            self.status in (Status.RESOLVED, Status.CLOSED)
            and done is not None
            and (done <= deadline)
        )

    # ------------------------------------------------------------------ queries
    @property
    def content_version(self) -> int:
        """The version of the ticket's last event that is not about drafts: what a draft's
        prompt is built from (a draft's own events change nothing it reads)."""
        version = self.version
        while version in self.draft_versions:
            version -= 1
        return version

    def draft_for(self, draft_id: UUID, *, actor_id: str, actor_role: Role) -> Draft:
        """A draft, for the agent who asked for it (and admins); others find none."""
        draft = self.drafts.get(draft_id)
        if draft is None or (actor_role is not Role.ADMIN and draft.requested_by != actor_id):
            raise NotFoundError("No such draft.", id=str(draft_id))
        return draft

    def __deepcopy__(self, memo: dict[int, Any]) -> Ticket:
        """A copy that shares the (frozen) messages instead of copying every one.

        The repository's aggregate cache hands out deep copies, one per command; copying
        each message made that cost grow with the conversation (a ticket with a few hundred
        messages cost milliseconds per command). Messages are immutable values: the copy
        gets its own list of the same ``Message`` objects, everything else is deep-copied.
        """
        clone = Ticket.__new__(Ticket)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            if name == "messages":
                clone.__dict__[name] = list(value)
            else:
                clone.__dict__[name] = copy.deepcopy(value, memo)
        return clone

    @property
    def public_version(self) -> int:
        """The ticket's version as its customer counts: how many public events it has had
        (``is_public``), so staff-only events between two public ones leave no gap."""
        return len(self.public_versions)

    def public_ordinal(self, version: int) -> int:
        """The customer's version of the ticket as it was at real version ``version``."""
        return bisect.bisect_right(self.public_versions, version)

    def real_version(self, public_version: int) -> int:
        """The real version at which the customer's ``public_version`` was current: that of
        its public event (0 for 0; past the newest public event: the ticket's version)."""
        if public_version <= 0:
            return 0
        if public_version > len(self.public_versions):
            return self.version
        return self.public_versions[public_version - 1]

    def message_as_seen(self, message: Message, *, customer: bool) -> dict[str, Any]:
        """A message as a reader sees it: for a customer, numbered in public versions."""
        shown = message.as_dict()
        if customer:
            shown["version"] = self.public_ordinal(message.version)
        return shown

    def public_messages_after(self, version: int) -> list[Message]:
        return [m for m in self.messages if not m.internal and m.version > version]

    def visible_messages(self, *, include_internal: bool) -> list[Message]:
        return [m for m in self.messages if include_internal or not m.internal]

    def visible_attachments(self, *, include_internal: bool) -> list[Attachment]:
        return [a for a in self.attachments.values() if include_internal or not a.internal]

    def attachment_for(self, attachment_id: UUID, *, actor_id: str, actor_role: Role) -> Attachment:
        """The file if this actor may download it now: their ticket (staff: any), not
        internal for customers, and scanned clean. Others' files are simply not found."""
        self._check_actor(actor_id, actor_role)
        attachment = self.attachments.get(attachment_id)
        if attachment is None or (attachment.internal and actor_role is Role.CUSTOMER):
            raise NotFoundError("No such attachment.", id=str(attachment_id))
        if attachment.status is ScanStatus.SCANNING:
            raise AttachmentScanningError(
                "The file is still being scanned; try again in a moment.", id=str(attachment_id)
            )
        if attachment.status is ScanStatus.INFECTED:
            raise AttachmentQuarantinedError(
                "The scanner found malware in this file; it is quarantined.",
                id=str(attachment_id),
            )
        return attachment

    # ------------------------------------------------------------------ helpers
    def _sendable_draft(self, draft_id: UUID, actor: _Actor, internal: bool) -> Draft:
        if actor.role is Role.CUSTOMER:
            raise ValidationError("Only staff send replies from drafts.", field="draft_id")
        draft = self.drafts.get(draft_id)
        if draft is None or draft.requested_by != actor.id:
            raise ValidationError("No such draft of yours on this ticket.", field="draft_id")
        if internal:
            raise ValidationError("A draft is sent as a public reply.", field="draft_id")
        if draft.status is not DraftStatus.READY:
            raise ValidationError(f"The draft is {draft.status.value}.", field="draft_id")
        if draft.sent_message_id is not None:
            raise ValidationError("A reply was sent from this draft already.", field="draft_id")
        return draft

    def _attachment(self, attachment_id: UUID) -> Attachment:
        attachment = self.attachments.get(attachment_id)
        if attachment is None:
            raise NotFoundError("No such attachment.", id=str(attachment_id))
        return attachment

    def _require_not_closed(self) -> None:
        if self.status is Status.CLOSED:
            raise TicketClosedError("A closed ticket cannot change any more.", status="closed")

    def _check_actor(self, actor_id: str, role: Role) -> _Actor:
        if role is Role.CUSTOMER and actor_id != self.customer_id:
            raise ForeignTicketError("No such ticket.")
        return _Actor(actor_id, role)

    def _change_status(self, to: Status, actor: _Actor, reason: str) -> None:
        self.trigger_event(
            self.StatusChanged,
            from_status=self.status.value,
            to_status=to.value,
            actor_id=actor.id,
            actor_role=actor.role.value,
            reason=reason,
        )

    def _on_customer_reply(self, actor: _Actor) -> None:
        if self.status is Status.WAITING_ON_CUSTOMER:
            target = Status.IN_PROGRESS
        elif self.status is Status.RESOLVED:
            target = Status.IN_PROGRESS if self.assigned_agent_id else Status.OPEN
        else:
            return
        check_transition(self.status, target, Trigger.CUSTOMER_REPLY, actor.role)
        self._change_status(target, actor, "customer replied")


def _parse_priority(value: object) -> Priority:
    if not isinstance(value, str):
        raise ValidationError("priority must be a string.", field="priority")
    return parse_priority(value)


RATING_MIN, RATING_MAX = 1, 5


def parse_rating(value: object) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not (RATING_MIN <= value <= RATING_MAX)
    ):
        raise ValidationError(
            f"rating is a whole number from {RATING_MIN} to {RATING_MAX}.", field="rating"
        )
    return value


DRAFT_EVENTS = (Ticket.DraftRequested, Ticket.DraftGenerated, Ticket.ReplySentFromDraft)


def is_public(event: object) -> bool:
    """Whether the ticket's customer learns of the event: not of internal notes or their
    files, nor of SLA breaches or drafts (staff bookkeeping). Customers' views of a ticket
    (its version, times) follow public events only."""
    if isinstance(
        event, Ticket.MessagePosted | Ticket.AttachmentUploaded | Ticket.AttachmentScanned
    ):
        return not event.internal  # an internal note's files are staff's too
    return not isinstance(
        event, (Ticket.SlaBreached, Ticket.SlaReminderDue, Ticket.TeamChanged, *DRAFT_EVENTS)
    )


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), two rows at a time. The
    application passes a faster one (C); this one is the rule's definition."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
