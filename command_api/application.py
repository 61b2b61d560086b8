"""The write side: one ``eventsourcing`` Application, one method per use case.

Every use case loads the aggregate, runs one domain method and appends the new events; that
append is the only write a command makes. A version conflict (another command stored an
event for the same ticket first) is retried on the fresh state, so concurrent harmless
changes all land; stale public replies are refused by the domain itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, InternalError, Recording
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from psycopg.conninfo import make_conninfo
from rapidfuzz.distance import Levenshtein

from command_api.group_commit import GroupCommitter
from domain.admin import AdminChange
from domain.agent import Agent, agent_id_for_user
from domain.errors import (
    DomainError,
    IllegalTransitionError,
    NotFoundError,
    VersionConflictError,
)
from domain.lifecycle import Role
from domain.macro import Macro, MacroContent
from domain.team import Team
from domain.ticket import Ticket
from infra.event_metadata import stamp
from infra.observability import context, metrics
from infra.postgres.connection import libpq_options
from infra.postgres.event_source import OwnAppends
from infra.postgres.recorder import DeskstreamRecorder

MAX_ATTEMPTS = 20
LOAD_THREADS = 8  # assign_many loads its tickets from this many threads

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class CommandResult:
    """What every command returns: the aggregate, its new version, its log position."""

    id: UUID
    version: int
    position: int | None
    message_id: UUID | None = None  # the message a post_message added (files go to it)
    # A ticket's version as its customer counts (``Ticket.public_version``); None for others.
    public_version: int | None = None

    def seen_by(self, role: Role) -> CommandResult:
        """The result as ``role`` is told it: a customer gets their ticket's public version."""
        if role is Role.CUSTOMER and self.public_version is not None:
            return replace(self, version=self.public_version, public_version=None)
        return self

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "version": self.version,
            "position": self.position,
        }
        if self.message_id is not None:
            out["message_id"] = str(self.message_id)
        return out


@dataclass(frozen=True)
class Actor:
    id: str
    role: Role


@dataclass(frozen=True)
class Assignment:
    """One decided assignment for ``assign_many``: valid only at ``expected_version``."""

    ticket_id: UUID
    agent_id: str
    policy: str
    reason: str
    expected_version: int | None = None


class DeskstreamApplication(Application[UUID]):
    """Tickets and agents, stored in PostgreSQL (table ``deskstream_events``)."""

    name = "Deskstream"
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "2000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }

    def __init__(
        self, env: dict[str, str] | None = None, *, group_commit: bool = False, max_batch: int = 128
    ) -> None:
        super().__init__(env)
        self._committer: GroupCommitter | None = None
        self._versions_query: str | None = None  # see _conflicting
        self._stored = StoredAggregates(int(self.env.get("AGGREGATE_CACHE_MAXSIZE", "2000")))
        self._turns = Turns()
        # What this application appends, once the push projector of this process asks for
        # it (``watch_own_appends``, ADR 0021); before that, and in other processes, nothing.
        self._own_appends: OwnAppends | None = None
        self._own_lock = threading.Lock()
        if group_commit:
            self._committer = GroupCommitter(self._save_batch, max_batch=max_batch)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
        super().close()
        if self._own_appends is not None:
            self._own_appends.close()

    @property
    def own_appends(self) -> OwnAppends | None:
        return self._own_appends

    def watch_own_appends(self) -> OwnAppends | None:
        """The window of this application's appends from now on (None if its recorder does not
        name its NOTIFYs); appends before the first call are not in it."""
        with self._own_lock:
            if self._own_appends is None and isinstance(self.recorder, DeskstreamRecorder):
                self._own_appends = OwnAppends(self.recorder.notify_token)
            return self._own_appends

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """``Application.save``; for domain events (what every command here saves) without
        its per-object ``isinstance`` checks against ``typing`` protocols, which cost more
        than the rest of building the append (ADR 0021). An append that raised for another
        reason than a version conflict may still have committed (a connection lost during
        COMMIT): ``own_appends`` is told, so its readers go back to the log. It calls
        eventsourcing's private ``_record`` and ``_take_snapshots``: see
        docs/upstream-patches.md (4), pinned by tests/unit/test_upstream_pins.py."""
        try:
            if objs and all(isinstance(obj, Aggregate.Event) for obj in objs):
                processing_event: ProcessingEvent[UUID] = ProcessingEvent()
                processing_event.events.extend(objs)
                processing_event.saved_kwargs.update(kwargs)
                recordings = self._record(processing_event)
                self._take_snapshots(processing_event)
                self._notify(recordings)
                self.notify(processing_event.events)
                _count(objs)
                return recordings
            recordings = super().save(*objs, **kwargs)
            _count([r.domain_event for r in recordings])
            return recordings
        except IntegrityError:
            raise  # refused before COMMIT: nothing was appended
        except BaseException:
            own = self._own_appends
            if own is not None:
                own.failed()
            raise

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        # Called by save() after the append committed.
        own = self._own_appends
        if own is not None:
            own.add([r.notification for r in recordings])

    # ------------------------------------------------------------------ tickets
    def open_ticket(
        self,
        actor: Actor,
        *,
        customer_id: str,
        subject: object,
        description: object,
        priority: object = "medium",
        tags: object = (),
        language: object = "en",
    ) -> CommandResult:
        ticket = Ticket.open(
            customer_id=customer_id,
            subject=subject,
            description=description,
            priority=priority,
            tags=tags,
            language=language,
            actor_id=actor.id,
            actor_role=actor.role,
        )
        return self._store(ticket)

    def post_message(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        body: object,
        internal: bool = False,
        attachments: object = (),
        seen_version: int | None = None,
        draft_id: UUID | None = None,
    ) -> CommandResult:
        message_id = uuid4()
        run = _message(actor, body, internal, attachments, seen_version, message_id, draft_id)
        return replace(self._update(Ticket, ticket_id, run), message_id=message_id)

    async def try_post_message(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        body: object,
        internal: bool = False,
        attachments: object = (),
        seen_version: int | None = None,
    ) -> CommandResult | None:
        """``post_message`` for a caller on an event loop, which must not block: None, with
        nothing appended, wherever that would take more than awaiting the ticket's turn,
        deciding on the ticket in hand and awaiting its group commit (see ``_try_update``).
        The caller then uses ``post_message`` from a thread, which decides the same command
        the usual way."""
        message_id = uuid4()
        run = _message(actor, body, internal, attachments, seen_version, message_id)
        result = await self._try_update(Ticket, ticket_id, run)
        return None if result is None else replace(result, message_id=message_id)

    def change_status(
        self, ticket_id: UUID, actor: Actor, *, status: str, reason: str = ""
    ) -> CommandResult:
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.change_status(
                target=status, actor_id=actor.id, actor_role=actor.role, reason=reason
            ),
        )

    def assign_ticket(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        agent_id: str | None,
        policy: str = "manual",
        reason: str = "",
        expected_version: int | None = None,
    ) -> CommandResult:
        """Assign (or with ``agent_id=None`` unassign). With ``expected_version``, refused with
        ``VersionConflictError`` unless the ticket is still at that version (automation decides
        on what it has seen; anything newer makes the decision stale)."""

        def run(ticket: Ticket) -> None:
            _expect(ticket, expected_version)
            if agent_id is None:
                ticket.unassign(actor_id=actor.id, actor_role=actor.role, reason=reason)
            else:
                ticket.assign(
                    agent_id=agent_id,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    policy=policy,
                    reason=reason,
                )

        return self._update(Ticket, ticket_id, run)

    def edit_ticket(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        subject: object = None,
        description: object = None,
        tags: object = None,
        priority: object = None,
    ) -> CommandResult:
        def run(ticket: Ticket) -> None:
            ticket.edit(
                actor_id=actor.id,
                actor_role=actor.role,
                subject=subject,
                description=description,
                tags=tags,
            )
            if priority is not None:
                ticket.change_priority(priority=priority, actor_id=actor.id, actor_role=actor.role)

        return self._update(Ticket, ticket_id, run)

    def assign_many(
        self, actor: Actor, assignments: Sequence[Assignment]
    ) -> list[CommandResult | DomainError]:
        """Several decided assignments (automation), appended in one transaction.

        Each is checked exactly as ``assign_ticket`` checks it (with its expected version);
        a refused one gives its ``DomainError`` and does not hold up the others. If the joint
        append meets a version conflict, each is issued again on its own.
        """
        results: list[CommandResult | DomainError | None] = [None] * len(assignments)
        decided: list[tuple[int, Ticket]] = []
        # One read per ticket: issued from a few threads, since each mostly waits on the DB.
        with ThreadPoolExecutor(min(LOAD_THREADS, len(assignments) or 1)) as pool:
            loaded = list(pool.map(self._try_get_ticket, [a.ticket_id for a in assignments]))
        for i, a in enumerate(assignments):
            try:
                ticket = loaded[i]
                if isinstance(ticket, DomainError):
                    raise ticket
                _expect(ticket, a.expected_version)
                ticket.assign(
                    agent_id=a.agent_id,
                    actor_id=actor.id,
                    actor_role=actor.role,
                    policy=a.policy,
                    reason=a.reason,
                )
                decided.append((i, ticket))
            except DomainError as err:
                results[i] = err
        if decided:
            pending = [(i, t, t.collect_events()) for i, t in decided]
            events = [e for _, _, evs in pending for e in evs]
            stamp(events, context.metadata())
            try:
                recordings = (
                    self._committer.submit(events) if self._committer else self.save(*events)
                )
            except IntegrityError:
                for i, _ in decided:
                    a = assignments[i]
                    try:
                        results[i] = self.assign_ticket(
                            a.ticket_id,
                            actor,
                            agent_id=a.agent_id,
                            policy=a.policy,
                            reason=a.reason,
                            expected_version=a.expected_version,
                        )
                    except DomainError as err:
                        results[i] = err
            else:
                it = iter(recordings)
                for i, ticket, evs in pending:
                    last = [next(it) for _ in evs][-1]
                    results[i] = CommandResult(ticket.id, ticket.version, last.notification.id)
        return [r for r in results if r is not None]

    def _try_get_ticket(self, ticket_id: UUID) -> Ticket | DomainError:
        try:
            return self._get(Ticket, ticket_id, None)
        except DomainError as err:
            return err

    def record_sla_breach(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        target: str,
        deadline: datetime,
        breached_at: datetime,
        priority: str,
        policy: str,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record an SLA breach (idempotent: ``position`` is None when nothing was stored)."""

        def run(ticket: Ticket) -> None:
            _expect(ticket, expected_version)
            ticket.record_sla_breach(
                target=target,
                deadline=deadline,
                breached_at=breached_at,
                priority=priority,
                policy=policy,
                actor_id=actor.id,
                actor_role=actor.role,
            )

        return self._update(Ticket, ticket_id, run)

    def record_sla_reminder(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        target: str,
        deadline: datetime,
        reminded_at: datetime,
        minutes_before: int,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record that an SLA deadline is near (idempotent per deadline: ``position`` is None
        when nothing was stored)."""

        def run(ticket: Ticket) -> None:
            _expect(ticket, expected_version)
            ticket.record_sla_reminder(
                target=target,
                deadline=deadline,
                reminded_at=reminded_at,
                minutes_before=minutes_before,
                actor_id=actor.id,
                actor_role=actor.role,
            )

        return self._update(Ticket, ticket_id, run)

    def rate_satisfaction(
        self, ticket_id: UUID, actor: Actor, *, rating: object, comment: object, channel: str
    ) -> CommandResult:
        """The customer's satisfaction rating (the same again stores nothing)."""
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.rate_satisfaction(
                rating=rating,
                comment=comment,
                channel=channel,
                actor_id=actor.id,
                actor_role=actor.role,
            ),
        )

    def check_attachment(self, ticket_id: UUID, actor: Actor, **upload: Any) -> None:
        """Raise what ``upload_attachment`` would refuse, storing nothing: decided on a copy of
        the ticket, so a file is put in storage only once the upload would be accepted."""
        self.get_ticket(ticket_id).upload_attachment(
            actor_id=actor.id, actor_role=actor.role, **upload
        )

    def upload_attachment(self, ticket_id: UUID, actor: Actor, **upload: Any) -> CommandResult:
        """Record a stored file (``Ticket.upload_attachment`` names the fields)."""
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.upload_attachment(actor_id=actor.id, actor_role=actor.role, **upload),
        )

    def record_attachment_scan(
        self, ticket_id: UUID, actor: Actor, *, attachment_id: UUID, verdict: str, signature: str
    ) -> CommandResult:
        """Record the scanner's verdict (idempotent: ``position`` is None when nothing was
        stored because a verdict was recorded before)."""
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.record_attachment_scan(
                attachment_id=attachment_id,
                verdict=verdict,
                signature=signature,
                actor_id=actor.id,
                actor_role=actor.role,
            ),
        )

    # ------------------------------------------------------------------ drafts
    def request_draft(
        self,
        ticket_id: UUID,
        actor: Actor,
        *,
        draft_id: UUID,
        language: object,
        allow_internal: bool = False,
    ) -> CommandResult:
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.request_draft(
                draft_id=draft_id,
                language=language,
                allow_internal=allow_internal,
                actor_id=actor.id,
                actor_role=actor.role,
            ),
        )

    def record_draft(
        self, ticket_id: UUID, actor: Actor, *, draft_id: UUID, **outcome: Any
    ) -> CommandResult:
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.record_draft(
                draft_id=draft_id, actor_id=actor.id, actor_role=actor.role, **outcome
            ),
        )

    def get_ticket(self, ticket_id: UUID, version: int | None = None) -> Ticket:
        return self._get(Ticket, ticket_id, version)

    def ticket_events(self, ticket_id: UUID) -> list[Aggregate.Event]:
        events = list(self.events.get(ticket_id))
        if not events:
            raise NotFoundError("No such ticket.", id=str(ticket_id))
        return events  # type: ignore[return-value]

    def version_at(self, ticket_id: UUID, moment: datetime) -> int | None:
        """The ticket's version at ``moment``, or None if it did not exist yet."""
        version = None
        for event in self.ticket_events(ticket_id):
            if event.timestamp > moment:
                break
            version = event.originator_version
        return version

    # ------------------------------------------------------------------ agents
    def register_agent(
        self,
        *,
        user_id: str,
        name: str,
        capacity: object = 5,
        skills: object = (),
        languages: object = ("en",),
    ) -> CommandResult:
        agent = Agent.register(
            user_id=user_id, name=name, capacity=capacity, skills=skills, languages=languages
        )
        return self._store(agent)

    def set_agent_availability(self, user_id: str, availability: object) -> CommandResult:
        return self._update(
            Agent, agent_id_for_user(user_id), lambda a: a.set_availability(availability)
        )

    def set_agent_capacity(self, user_id: str, capacity: object) -> CommandResult:
        return self._update(Agent, agent_id_for_user(user_id), lambda a: a.set_capacity(capacity))

    def set_agent_skills(self, user_id: str, *, skills: object, languages: object) -> CommandResult:
        return self._update(
            Agent,
            agent_id_for_user(user_id),
            lambda a: a.set_skills(skills=skills, languages=languages),
        )

    def set_agent_working_hours(self, user_id: str, working_hours: object) -> CommandResult:
        return self._update(
            Agent, agent_id_for_user(user_id), lambda a: a.set_working_hours(working_hours)
        )

    def get_agent(self, user_id: str) -> Agent:
        return self._get(Agent, agent_id_for_user(user_id), None)

    # ------------------------------------------------------------------ teams
    def create_team(self, actor: Actor, *, name: object) -> CommandResult:
        return self._store(Team.create(name=name, actor_id=actor.id, actor_role=actor.role))

    def rename_team(self, team_id: UUID, actor: Actor, *, name: object) -> CommandResult:
        return self._update(
            Team, team_id, lambda t: t.rename(name=name, actor_id=actor.id, actor_role=actor.role)
        )

    def archive_team(self, team_id: UUID, actor: Actor, *, archived: bool) -> CommandResult:
        def run(team: Team) -> None:
            if archived:
                team.archive(actor_id=actor.id, actor_role=actor.role)
            else:
                team.restore(actor_id=actor.id, actor_role=actor.role)

        return self._update(Team, team_id, run)

    def add_team_member(self, team_id: UUID, actor: Actor, *, user_id: str) -> CommandResult:
        return self._update(
            Team,
            team_id,
            lambda t: t.add_member(user_id=user_id, actor_id=actor.id, actor_role=actor.role),
        )

    def remove_team_member(self, team_id: UUID, actor: Actor, *, user_id: str) -> CommandResult:
        return self._update(
            Team,
            team_id,
            lambda t: t.remove_member(user_id=user_id, actor_id=actor.id, actor_role=actor.role),
        )

    def get_team(self, team_id: UUID) -> Team:
        return self._get(Team, team_id, None)

    def set_ticket_team(
        self, ticket_id: UUID, actor: Actor, *, team_id: UUID | None
    ) -> CommandResult:
        """Route a ticket to a team (which must exist and not be archived), or to none."""
        if team_id is not None:
            team = self.get_team(team_id)
            if team.archived:
                raise IllegalTransitionError("An archived team takes no new tickets.")
        target = None if team_id is None else str(team_id)
        return self._update(
            Ticket,
            ticket_id,
            lambda t: t.set_team(team_id=target, actor_id=actor.id, actor_role=actor.role),
        )

    # ------------------------------------------------------------------ admin changes
    def record_admin_change(
        self, actor: Actor, *, action: str, subject: str, before: Any, after: Any
    ) -> CommandResult:
        """Append who changed what (a setting, a role, an invitation) with before and after."""
        return self._store(
            AdminChange.record(
                action=action,
                subject=subject,
                before=before,
                after=after,
                actor_id=actor.id,
                actor_role=actor.role.value,
            )
        )

    # ------------------------------------------------------------------ macros
    def create_macro(self, actor: Actor, *, shared: bool, content: MacroContent) -> CommandResult:
        return self._store(
            Macro.create(shared=shared, actor_id=actor.id, actor_role=actor.role, **content)
        )

    def change_macro(self, macro_id: UUID, actor: Actor, content: MacroContent) -> CommandResult:
        self.get_macro(macro_id, actor)  # another agent's personal macro is not found
        return self._update(
            Macro,
            macro_id,
            lambda m: m.change(actor_id=actor.id, actor_role=actor.role, **content),
        )

    def delete_macro(self, macro_id: UUID, actor: Actor) -> CommandResult:
        self.get_macro(macro_id, actor)
        return self._update(
            Macro, macro_id, lambda m: m.delete(actor_id=actor.id, actor_role=actor.role)
        )

    def get_macro(self, macro_id: UUID, actor: Actor) -> Macro:
        """The macro if ``actor`` may see it (shared, or their own) and it is not deleted."""
        macro = self._get(Macro, macro_id, None)
        if macro.deleted or not macro.may_see(actor.id, actor.role):
            raise NotFoundError("No such macro.", id=str(macro_id))
        return macro

    # ------------------------------------------------------------------ plumbing
    def _get(self, cls: type[A], aggregate_id: UUID, version: int | None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFoundError(f"No such {cls.__name__.lower()}.", id=str(aggregate_id)) from None
        if not isinstance(aggregate, cls):
            raise NotFoundError(f"No such {cls.__name__.lower()}.", id=str(aggregate_id))
        return aggregate

    def _update(self, cls: type[A], aggregate_id: UUID, run: Callable[[A], None]) -> CommandResult:
        """Load, decide, append; on a version conflict, decide again on the fresh state.

        First, optimistically, on the aggregate as this process last stored it, without
        reading the store: if the append succeeds, no event came after that version (the
        store refuses a second event at a version), so that was the current state and the
        decision is the one the current state gives. Anything else (no such aggregate in
        hand, a domain error, nothing to append, a version conflict) is decided again on
        the state loaded from the store, as every command was before (ADR 0020).
        """
        with self._turns.turn(aggregate_id):
            return self._update_in_turn(cls, aggregate_id, run)

    async def _try_update(
        self, cls: type[A], aggregate_id: UUID, run: Callable[[A], None]
    ) -> CommandResult | None:
        """``_update``'s first, optimistic attempt without blocking the caller's event loop:
        await the aggregate's turn, decide on the aggregate as this process last stored it,
        then await its group commit. None, with nothing appended, when that attempt cannot
        be made or does not succeed: no group committer, no aggregate in hand, the decision
        raises or has nothing to append (the state may be stale, so neither the error nor
        the no-op is final: only an append proves the state was current), or the append
        meets a version conflict. Those need ``_update`` (a read of the store, another
        decision), which blocks. Any other failure of the append is raised: the events may
        have been stored all the same."""
        committer = self._committer
        if committer is None:
            return None
        await self._turns.take(aggregate_id)
        handed_over = False  # the turn goes back from the committer's thread
        try:
            stored = self._stored.take(aggregate_id)
            if not isinstance(stored, cls):
                return None
            try:
                run(stored)
            except Exception:
                return None
            pending = stored.collect_events()
            if not pending:
                # Nothing to append, so nothing proves the ticket in hand is current: another
                # process may have changed it, and the command may not be a no-op there.
                self._stored.put(aggregate_id, stored)
                return None

            def settle(outcome: Any) -> None:
                # In the committer's thread, as soon as the commit is over: the next command
                # on the aggregate need not wait for this caller's event loop to run.
                if not isinstance(outcome, BaseException):
                    self._stored.put(aggregate_id, stored)
                self._turns.give_back(aggregate_id)

            stamp(pending, context.metadata())
            # Read now: once the turn is back, the next command may already be changing it.
            version, public = stored.version, _public_version(stored)
            handed_over = True
            outcome = await _committed(committer, pending, settle)
            if isinstance(outcome, IntegrityError):
                return None
            if isinstance(outcome, BaseException):
                raise outcome
            metrics.child(metrics.COMMANDS, cls.__name__).inc()
            return CommandResult(
                aggregate_id, version, outcome[-1].notification.id, public_version=public
            )
        finally:
            if not handed_over:
                self._turns.give_back(aggregate_id)

    def _update_in_turn(
        self, cls: type[A], aggregate_id: UUID, run: Callable[[A], None]
    ) -> CommandResult:
        stored = self._stored.take(aggregate_id)
        if isinstance(stored, cls):
            try:
                run(stored)
            except Exception:  # noqa: S110 - the state may be stale: decide again below
                pass
            else:
                if stored.pending_events:
                    try:
                        return self._store(stored)
                    except IntegrityError:
                        pass  # another process stored events first: decide again below
        for attempt in range(MAX_ATTEMPTS):
            aggregate = self._get(cls, aggregate_id, None)
            run(aggregate)
            try:
                return self._store(aggregate)
            except IntegrityError as exc:
                # Another command stored this version first: decide again on the fresh state
                # (the repository's cache fast-forwards, so the next load sees that event).
                if attempt == MAX_ATTEMPTS - 1:
                    raise IntegrityError(
                        f"{exc} (the last of {MAX_ATTEMPTS} attempts on {cls.__name__} "
                        f"{aggregate_id}, decided at version {aggregate.version})"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _store(self, aggregate: Aggregate) -> CommandResult:
        pending = aggregate.collect_events()
        if not pending:
            return CommandResult(
                aggregate.id, aggregate.version, None, public_version=_public_version(aggregate)
            )
        stamp(pending, context.metadata())  # in the caller's context, not the committer's
        if self._committer is not None:
            recordings = self._committer.submit(pending)
        else:
            recordings = self.save(*pending)
        metrics.child(metrics.COMMANDS, type(aggregate).__name__).inc()
        position = recordings[-1].notification.id if recordings else None
        # Stored: this object is now the aggregate at its stored version, and ours alone
        # (loads hand out copies), so the next command on it can start from here.
        public = _public_version(aggregate)  # read before the next command may change it
        self._stored.put(aggregate.id, aggregate)
        return CommandResult(aggregate.id, aggregate.version, position, public_version=public)

    def _save_batch(self, batch: list[list[Any]]) -> list[list[Recording[UUID]] | BaseException]:
        """Append many commands' events in one transaction; isolate failures on conflict."""
        flat = [event for events in batch for event in events]
        try:
            recordings = self.save(*flat)
        except IntegrityError as exc:
            if len(batch) == 1:
                return [_conflict(batch[0], exc)]
            return self._save_after_conflict(batch)
        results: list[list[Recording[UUID]] | BaseException] = []
        it: Iterator[Recording[UUID]] = iter(recordings)
        for events in batch:
            results.append([next(it) for _ in events])
        return results

    def _save_after_conflict(
        self, batch: list[list[Any]]
    ) -> list[list[Recording[UUID]] | BaseException]:
        """The batch met a version conflict: one query finds the commands that conflict (a
        version already stored, or taken by an earlier command of the batch), which get the
        error, and the others are appended together again. Commands decided on the
        aggregate as this process last stored it conflict whenever another process changed
        it meanwhile (ADR 0020); one of them must not cost the whole batch a transaction per
        command. If that finds none, or the second append conflicts too (a race with
        another process), each command is appended on its own, as before."""
        results: list[list[Recording[UUID]] | BaseException | None] = [None] * len(batch)
        stale = self._conflicting(batch)
        for i in stale:
            results[i] = _conflict(batch[i])
        rest = [i for i in range(len(batch)) if i not in stale]
        if stale and rest:
            try:
                recordings = self.save(*[event for i in rest for event in batch[i]])
            except IntegrityError:
                pass
            else:
                it: Iterator[Recording[UUID]] = iter(recordings)
                for i in rest:
                    results[i] = [next(it) for _ in batch[i]]
                rest = []
        for i in rest:
            results[i] = self._save_one(batch[i])
        return [r for r in results if r is not None]

    def _conflicting(self, batch: list[list[Any]]) -> set[int]:
        """Indexes of the commands whose events take a version already stored, or already
        taken by an earlier command of ``batch``."""
        recorder = self.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            return set()
        ids = list({event.originator_id for events in batch for event in events})
        if self._versions_query is None:
            self._versions_query = _versions_sql(recorder)
        with recorder.datastore.get_connection() as conn:
            rows = conn.execute(self._versions_query, [ids]).fetchall()
        taken: dict[UUID, int] = {row["originator_id"]: row["version"] for row in rows}
        stale: set[int] = set()
        for i, events in enumerate(batch):
            if any(e.originator_version <= taken.get(e.originator_id, 0) for e in events):
                stale.add(i)
                continue
            for e in events:
                taken[e.originator_id] = max(taken.get(e.originator_id, 0), e.originator_version)
        return stale

    def _save_one(self, events: list[Any]) -> list[Recording[UUID]] | BaseException:
        try:
            return self.save(*events)
        except IntegrityError as exc:
            return exc


class Turns:
    """One command at a time per aggregate in this process, in the order they came.

    Commands on one aggregate that arrive together would otherwise all decide on the same
    version, and all but one meet a version conflict on append and decide again, in a storm
    that grows with the number of clients (eight clients posting to one ticket: one command
    in nine answered 409 after its 20 attempts). Taking turns, the next command decides on
    what the previous one stored (``StoredAggregates``), so only another process's appends
    can conflict. Commands on different aggregates never wait for each other.

    A thread waits with ``turn``; a coroutine with ``take`` (on its event loop, which keeps
    running meanwhile) and passes the turn on with ``give_back``, from any thread. Either
    way the turn goes to the first in line.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Aggregates whose turn is held, each with the wake-ups of the commands in line.
        self._lines: dict[UUID, deque[Callable[[], None]]] = {}

    @contextmanager
    def turn(self, aggregate_id: UUID) -> Iterator[None]:
        """Wait for the aggregate's turn; hold it for the block."""
        gate = threading.Lock()
        gate.acquire()
        if not self._join(aggregate_id, gate.release):
            gate.acquire()  # released by whoever passes the turn on
        try:
            yield
        finally:
            self.give_back(aggregate_id)

    async def take(self, aggregate_id: UUID) -> None:
        """Wait for the aggregate's turn without blocking the running event loop; hand it
        back with ``give_back``. A caller cancelled while in line gives up its place."""
        loop = asyncio.get_running_loop()
        ours: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if ours.cancelled():
                self.give_back(aggregate_id)  # it left the line: the next one
            else:
                ours.set_result(None)

        def wake() -> None:  # from whichever thread passes the turn on
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # the loop is closed: nobody there takes it
                self.give_back(aggregate_id)

        if self._join(aggregate_id, wake):
            return
        try:
            await ours
        except asyncio.CancelledError:
            if ours.done() and not ours.cancelled():
                self.give_back(aggregate_id)  # handed the turn, then cancelled: pass it on
            raise

    def give_back(self, aggregate_id: UUID) -> None:
        """Pass the turn to the first in line, or free it."""
        with self._lock:
            line = self._lines[aggregate_id]
            if not line:
                del self._lines[aggregate_id]
                return
            wake = line.popleft()
        wake()

    def _join(self, aggregate_id: UUID, wake: Callable[[], None]) -> bool:
        """True if the turn was free and is now the caller's; else ``wake`` is put in line,
        to be called when the turn is passed to it."""
        with self._lock:
            line = self._lines.get(aggregate_id)
            if line is None:
                self._lines[aggregate_id] = deque()
                return True
            line.append(wake)
            return False


class StoredAggregates:
    """Aggregates as this process last stored them, for the next command on each.

    Taking one removes it, so a command owns what it took and mutates it freely (no copy),
    and one that fails leaves nothing half-changed behind. Commands on one aggregate take
    turns (``Turns``), so the next takes what the previous put back. Only ``_store`` puts
    one back, after a successful append. Least recently stored ones are dropped beyond
    ``maxsize``.
    """

    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def take(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            return self._items.pop(aggregate_id, None)

    def put(self, aggregate_id: UUID, aggregate: Aggregate) -> None:
        if self._maxsize <= 0:
            return
        with self._lock:
            self._items[aggregate_id] = aggregate
            self._items.move_to_end(aggregate_id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)


def _conflict(events: list[Any], cause: BaseException | None = None) -> IntegrityError:
    """The error a command of a group commit gets when its events meet a version conflict:
    which aggregate and versions, and the store's own words when it gave them (a conflict no
    retry resolves must say where it was)."""
    where = ", ".join(
        f"{type(e).__qualname__} {e.originator_id} v{e.originator_version}" for e in events[:3]
    )
    error = IntegrityError(f"version conflict: {where}" + (f": {cause}" if cause else ""))
    error.__cause__ = cause
    return error


def _versions_sql(recorder: PostgresApplicationRecorder) -> str:
    return (
        sql.SQL(
            "SELECT originator_id, max(originator_version) AS version FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        )
        .format(
            schema=sql.Identifier(recorder.datastore.schema),
            table=sql.Identifier(recorder.events_table_name),
        )
        .as_string(None)
    )


def _message(
    actor: Actor,
    body: object,
    internal: bool,
    attachments: object,
    seen_version: int | None,
    message_id: UUID,
    draft_id: UUID | None = None,
) -> Callable[[Ticket], None]:
    def run(ticket: Ticket) -> None:
        ticket.post_message(
            author_id=actor.id,
            author_role=actor.role,
            body=body,
            internal=internal,
            attachments=attachments,
            seen_version=seen_version,
            message_id=message_id,
            draft_id=draft_id,
            edit_distance=Levenshtein.distance if draft_id is not None else None,
        )

    return run


def _committed(
    committer: GroupCommitter, events: Sequence[Any], first: Callable[[Any], None]
) -> asyncio.Future[Any]:
    """The outcome of appending ``events`` in a group commit (the recordings, or the
    exception), as a future of the running event loop; ``first`` gets it before, in the
    committer's thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def resolve(outcome: Any) -> None:
        if not future.done():
            future.set_result(outcome)

    def done(outcome: Any) -> None:
        try:
            first(outcome)
        finally:
            loop.call_soon_threadsafe(resolve, outcome)

    committer.submit_nowait(events, done)
    return future


def _count(events: Sequence[Any]) -> None:
    """Count appended events by type (``deskstream_events_appended_total``)."""
    for event in events:
        metrics.child(metrics.EVENTS, type(event).__qualname__).inc()


def _public_version(aggregate: Aggregate) -> int | None:
    return aggregate.public_version if isinstance(aggregate, Ticket) else None


def _expect(aggregate: Aggregate, expected_version: int | None) -> None:
    if expected_version is not None and aggregate.version != expected_version:
        raise VersionConflictError(
            f"The decision was made on version {expected_version}; it is now at "
            f"{aggregate.version}.",
            expected_version=expected_version,
            current_version=aggregate.version,
        )


_app: DeskstreamApplication | None = None
_app_lock = threading.Lock()


def eventstore_env(database: dict[str, Any], pool_size: int) -> dict[str, str]:
    """The event store's settings, built from Django's ``DATABASES['default']`` (its libpq
    ``OPTIONS``, such as ``sslmode``, included: ``infra/postgres/factory.py``).

    ``pool_size`` is the most connections the event store's pool holds at once. The library's
    ``POSTGRES_POOL_SIZE`` is the pool's *minimum*, all opened at its first use (creating the
    table at start-up, in every process), so it is 0: connections open on demand, up to
    ``POSTGRES_MAX_OVERFLOW``, and close after ten idle minutes (psycopg_pool's ``max_idle``).
    See the connection budget in docs/operations.md.
    """
    return {
        "PERSISTENCE_MODULE": "infra.postgres.factory:DeskstreamPostgresFactory",
        "POSTGRES_LIBPQ_OPTIONS": make_conninfo(**libpq_options(database)),
        # Statements rendered once, and a NOTIFY naming this process (ADR 0021).
        "APPLICATION_RECORDER_TOPIC": "infra.postgres.recorder:DeskstreamRecorder",
        # Events carry the request's ids as metadata beside their payload (ADR 0042).
        "MAPPER_TOPIC": "infra.event_metadata:DeskstreamMapper",
        "POSTGRES_DBNAME": str(database["NAME"]),
        "POSTGRES_HOST": str(database["HOST"] or "127.0.0.1"),
        "POSTGRES_PORT": str(database["PORT"] or "5432"),
        "POSTGRES_USER": str(database["USER"]),
        "POSTGRES_PASSWORD": str(database["PASSWORD"] or ""),
        "POSTGRES_POOL_SIZE": "0",
        "POSTGRES_MAX_OVERFLOW": str(max(pool_size, 1)),
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "CREATE_TABLE": "y",
    }


def _lost_create_race(error: Exception) -> bool:
    text = str(error)
    return "tuple concurrently updated" in text or "pg_type_typname_nsp_index" in text


def get_application() -> DeskstreamApplication:
    """The process-wide application, built on first use from the current Django settings."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                from django.conf import settings

                env = eventstore_env(settings.DATABASES["default"], settings.EVENTSTORE_POOL_SIZE)
                for attempt in range(5):
                    try:
                        _app = DeskstreamApplication(
                            env,
                            group_commit=settings.GROUP_COMMIT,
                            max_batch=settings.GROUP_COMMIT_MAX_BATCH,
                        )
                        break
                    except (InternalError, IntegrityError) as error:
                        # Processes starting together (the services of one deployment) race
                        # on ``CREATE TABLE IF NOT EXISTS``: PostgreSQL answers the loser
                        # "tuple concurrently updated", or a duplicate of the table's row
                        # type in pg_type. The table exists then: try again.
                        if not _lost_create_race(error) or attempt == 4:
                            raise
                        time.sleep(0.1 * (attempt + 1))
    assert _app is not None
    return _app


def close_application() -> None:
    global _app
    with _app_lock:
        if _app is not None:
            _app.close()
            _app = None
