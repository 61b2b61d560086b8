"""PostgreSQL read-model tables. Only projectors write them; the read API only reads them.

Tables have no foreign keys between them: each belongs to one projector and can be rebuilt
beside the live copy and swapped in by renaming (see ``infra.postgres.projection_store``).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class ProjectionPosition(models.Model):
    name = models.CharField(primary_key=True, max_length=64)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    # The source the tables were built from, 'log' or 'kafka' (infra/postgres/feed.py);
    # empty on rows from before it was recorded.
    source = models.CharField(max_length=8, blank=True, db_default="")

    class Meta:
        db_table = "projection_position"

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


class AppliedVersion(models.Model):
    """The last version of each aggregate a projector applied (stream sources: Kafka)."""

    pk = models.CompositePrimaryKey("name", "aggregate_id")
    name = models.CharField(max_length=64)
    aggregate_id = models.UUIDField()
    version = models.IntegerField()

    class Meta:
        db_table = "projection_applied"

    def __str__(self) -> str:
        return f"{self.name}:{self.aggregate_id}@{self.version}"


class TicketRecord(models.Model):
    id = models.UUIDField(primary_key=True)
    customer_id = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=200)
    description = models.TextField()
    status = models.CharField(max_length=32)
    priority = models.CharField(max_length=16)
    tags = ArrayField(models.CharField(max_length=40), default=list)
    language = models.CharField(max_length=16)
    assigned_agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001 - None: nobody
    version = models.IntegerField()
    position = models.BigIntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    last_message_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    closed_at = models.DateTimeField(null=True)
    message_count = models.IntegerField(default=0)
    public_message_count = models.IntegerField(default=0)
    sla_breaches = ArrayField(models.CharField(max_length=32), default=list)  # SLA targets
    # What the customer sees: the same, moved by public events only (no internal notes, no
    # SLA breaches), so their views never tell when staff worked on the ticket. Their
    # version counts the public events (1, 2, 3, ...: ``domain.ticket.Ticket.public_version``).
    public_version = models.IntegerField(default=0)
    public_position = models.BigIntegerField(default=0)
    public_updated_at = models.DateTimeField(null=True)
    public_last_message_at = models.DateTimeField(null=True)
    # The ticket's files (its own and its messages'), each with its scan status; see
    # projections/tickets.py for the shape.
    attachments = models.JSONField(default=list)
    # The team the ticket is routed to (TeamChanged; None: any agent). Staff only.
    team_id = models.CharField(max_length=64, null=True)  # noqa: DJ001 - None: no team
    # The customer's satisfaction rating (1-5) once they gave one, its comment and time.
    satisfaction_rating = models.SmallIntegerField(null=True)
    satisfaction_comment = models.TextField(default="", blank=True)
    satisfaction_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "rm_ticket"
        indexes = [
            models.Index(fields=["status", "created_at"], name="rm_ticket_status_created"),
            models.Index(fields=["assigned_agent_id", "status"], name="rm_ticket_agent_status"),
            models.Index(fields=["created_at", "id"], name="rm_ticket_created_id"),
            models.Index(fields=["updated_at", "id"], name="rm_ticket_updated_id"),
            GinIndex(fields=["tags"], name="rm_ticket_tags"),
        ]

    def __str__(self) -> str:
        return f"ticket {self.id}"


class MessageRecord(models.Model):
    id = models.UUIDField(primary_key=True)
    ticket_id = models.UUIDField()
    version = models.IntegerField()
    author_id = models.CharField(max_length=64)
    author_role = models.CharField(max_length=16)
    body = models.TextField()
    internal = models.BooleanField()
    attachments = models.JSONField(default=list)
    posted_at = models.DateTimeField()
    position = models.BigIntegerField()
    # The ticket's public version with this message (what its customer is shown as
    # ``version``); None for an internal note.
    public_version = models.IntegerField(null=True)

    class Meta:
        db_table = "rm_message"
        indexes = [models.Index(fields=["ticket_id", "version"], name="rm_message_ticket_version")]

    def __str__(self) -> str:
        return f"message {self.id}"


class AgentRecord(models.Model):
    id = models.UUIDField(primary_key=True)
    user_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    availability = models.CharField(max_length=16)
    capacity = models.IntegerField()
    skills = ArrayField(models.CharField(max_length=40), default=list)
    languages = ArrayField(models.CharField(max_length=40), default=list)
    version = models.IntegerField()

    class Meta:
        db_table = "rm_agent"

    def __str__(self) -> str:
        return f"agent {self.user_id}"


class MacroRecord(models.Model):
    """A macro (canned reply) as staff are offered it: shared, or personal to ``owner_id``.
    Written by the read-model projector from ``Macro`` events; a deleted macro has no row."""

    id = models.UUIDField(primary_key=True)
    shared = models.BooleanField()
    owner_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=32, null=True)  # noqa: DJ001  # null: no change
    add_tags = ArrayField(models.CharField(max_length=40), default=list)
    assign_to = models.CharField(max_length=64, null=True)  # noqa: DJ001  # null: no change
    version = models.IntegerField()
    position = models.BigIntegerField()

    class Meta:
        db_table = "rm_macro"
        indexes = [models.Index(fields=["owner_id", "shared"], name="rm_macro_owner")]

    def __str__(self) -> str:
        return f"macro {self.id}"


class SavedFilterRecord(models.Model):
    """An agent's saved list filters, shown as an extra view of theirs (ADR 0046: a
    preference, not a business fact, so a plain table rather than events)."""

    id = models.BigAutoField(primary_key=True)
    user_id = models.CharField(max_length=64)
    name = models.CharField(max_length=80)
    filters = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "saved_filter"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "name"], name="saved_filter_user_name")
        ]

    def __str__(self) -> str:
        return f"saved filter {self.name}"


class AgentWorkloadRecord(models.Model):
    agent_user_id = models.CharField(primary_key=True, max_length=64)
    open_tickets = models.IntegerField()

    class Meta:
        db_table = "rm_agent_workload"

    def __str__(self) -> str:
        return f"workload {self.agent_user_id}"


class CustomerStatsRecord(models.Model):
    customer_id = models.CharField(primary_key=True, max_length=64)
    open_tickets = models.IntegerField()
    total_tickets = models.IntegerField()

    class Meta:
        db_table = "rm_customer_stats"

    def __str__(self) -> str:
        return f"customer stats {self.customer_id}"


class NotificationRecord(models.Model):
    """Per-user in-app notifications, written by the notification projector only.

    Derived from the log alone (rebuilt like any read model); whether the user has read one
    is the user's own data and lives in ``NotificationReadRecord`` (ADR 0012).
    """

    id = models.UUIDField(primary_key=True)  # projections.notifications.notification_id
    user_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    ticket_id = models.UUIDField(null=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    position = models.BigIntegerField()

    class Meta:
        db_table = "rm_notification"
        indexes = [models.Index(fields=["user_id", "created_at"], name="rm_notification_user")]

    def __str__(self) -> str:
        return f"notification {self.id}"


class NotificationTicketRecord(models.Model):
    """What the notification projector remembers of each ticket (its own copy, rebuilt with
    it): who the customer and the agent are, the subject, the status."""

    id = models.UUIDField(primary_key=True)
    customer_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=32)
    agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001 - None: nobody
    version = models.IntegerField()
    public_version = models.IntegerField(default=0)  # its customer's (public events only)

    class Meta:
        db_table = "rm_notification_ticket"

    def __str__(self) -> str:
        return f"notification facts {self.id}"


class NotificationReadRecord(models.Model):
    """A user has read a notification. Written by the user (``POST .../read``), never by a
    projector, and never rebuilt: ids are stable across rebuilds, so read marks survive."""

    notification_id = models.UUIDField(primary_key=True)
    user_id = models.CharField(max_length=64)
    read_at = models.DateTimeField()

    class Meta:
        db_table = "notification_read"
        indexes = [models.Index(fields=["user_id"], name="notification_read_user")]

    def __str__(self) -> str:
        return f"read {self.notification_id}"


class NotificationOutboxRecord(models.Model):
    """One e-mail to send: inserted with the projector's position (exactly once per
    (position, recipient, kind)), sent by a Celery task that claims the row (committed,
    under a lease) and records the hand-over before the SMTP server can have the message,
    so it is never sent twice (docs/notifications.md). Never rebuilt: a rebuild must not
    send anything again."""

    class Status(models.TextChoices):
        PENDING = "pending"  # to send, or to retry when available_at comes
        CLAIMED = "claimed"  # a task has it until lease_until; nothing handed over yet
        HANDED_OVER = "handed_over"  # its end of data is being written; no answer recorded
        SENT = "sent"
        FAILED = "failed"  # gave up after the last attempt
        SKIPPED = "skipped"  # nothing to send (no address, inactive user)
        UNCERTAIN = "uncertain"  # its task was lost after the hand-over: not sent again

    id = models.BigAutoField(primary_key=True)
    notification_id = models.UUIDField(unique=True)
    position = models.BigIntegerField()
    recipient_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    ticket_id = models.UUIDField()
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()  # when the row was written
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.IntegerField(default=0)
    available_at = models.DateTimeField()  # the sweep may (re-)enqueue it from then on
    sent_at = models.DateTimeField(null=True)
    last_error = models.TextField(default="")
    claim = models.UUIDField(null=True)  # the attempt that holds (or last held) the row
    lease_until = models.DateTimeField(null=True)  # a claim not settled by then is settled

    class Meta:
        db_table = "notification_outbox"
        constraints = [
            models.UniqueConstraint(
                fields=["position", "recipient_id", "kind"], name="notification_outbox_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["available_at"],
                name="notification_outbox_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["lease_until"],
                name="notification_outbox_claimed",
                condition=models.Q(status__in=["claimed", "handed_over"]),
            ),
            models.Index(fields=["ticket_id", "position"], name="notification_outbox_ticket"),
        ]

    def __str__(self) -> str:
        return f"outbox {self.id} ({self.status})"


class SearchDocument(models.Model):
    """One searchable thing: a ticket, a message or a customer, with the ticket's filter fields."""

    key = models.CharField(primary_key=True, max_length=80)  # kind:id
    kind = models.CharField(max_length=16)
    ticket_id = models.UUIDField(null=True)
    customer_id = models.CharField(max_length=64)
    internal = models.BooleanField(default=False)
    title = models.TextField()  # weight A
    body = models.TextField()  # weight B
    metadata = models.TextField(default="")  # weight C: the customer's metadata
    # NULL: not a ticket's document (a customer's), or no agent; not the same as "".
    status = models.CharField(max_length=32, null=True)  # noqa: DJ001
    priority = models.CharField(max_length=16, null=True)  # noqa: DJ001
    assigned_agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001
    tags = ArrayField(models.CharField(max_length=40), default=list)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    occurred_at = models.DateTimeField(null=True)  # ticket opened, message posted, ...
    document = SearchVectorField()

    class Meta:
        db_table = "rm_search_doc"
        indexes = [
            GinIndex(fields=["document"], name="rm_search_doc_fts"),
            # A search asks one kind at a time. Tickets and customers (one document in ten)
            # have text indexes of their own, which hand out only their documents; messages
            # use the one above, intersected with rm_search_doc_recent (kind and time).
            *(
                GinIndex(
                    fields=["document"],
                    name=f"rm_search_doc_fts_{kind}",
                    condition=models.Q(kind=kind),
                )
                for kind in ("ticket", "customer")
            ),
            models.Index(fields=["ticket_id"], name="rm_search_doc_ticket"),
            # A customer's search: their few documents, not every match of the words.
            models.Index(fields=["customer_id"], name="rm_search_doc_customer"),
            # A very common word: a kind's documents newest first until enough of them match,
            # rather than every match read to find the newest (``PostgresSearchIndex``).
            models.Index(
                models.F("kind"),
                models.F("occurred_at").desc(nulls_last=True),
                models.F("key"),
                name="rm_search_doc_recent",
            ),
            # Filtered searches: a kind's documents with the fields, intersected with the
            # matches of the words. A message's document carries its ticket's fields
            # (``infra.postgres.search.MESSAGE_COPIES``, ADR 0023).
            *(
                index
                for kind in ("ticket", "message")
                for index in (
                    models.Index(
                        fields=["assigned_agent_id", "status"],
                        name=f"rm_search_doc_{kind}_agent",
                        condition=models.Q(kind=kind),
                    ),
                    models.Index(
                        fields=["status", "priority"],
                        name=f"rm_search_doc_{kind}_status",
                        condition=models.Q(kind=kind),
                    ),
                    GinIndex(
                        fields=["tags"],
                        name=f"rm_search_doc_{kind}_tags",
                        condition=models.Q(kind=kind),
                    ),
                )
            ),
        ]

    def __str__(self) -> str:
        return self.key


# ---------------------------------------------------------------- automation (ADR 0011)
class AssignAgentRecord(models.Model):
    """What the assignment process manager knows of an agent (its own copy, rebuilt with it)."""

    user_id = models.CharField(primary_key=True, max_length=64)
    aggregate_id = models.UUIDField(unique=True)
    name = models.CharField(max_length=200)
    availability = models.CharField(max_length=16)
    capacity = models.IntegerField()
    skills = ArrayField(models.CharField(max_length=40), default=list)
    languages = ArrayField(models.CharField(max_length=40), default=list)
    working_hours = models.JSONField(null=True)  # {"time_zone", "weekly_hours"}; null: any time
    version = models.IntegerField()

    class Meta:
        db_table = "rm_assign_agent"

    def __str__(self) -> str:
        return f"assignable agent {self.user_id}"


class AssignTicketRecord(models.Model):
    """What the assignment process manager knows of a ticket: enough to decide and to count
    each agent's open tickets."""

    id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=32)
    priority = models.CharField(max_length=16)
    tags = ArrayField(models.CharField(max_length=40), default=list)
    language = models.CharField(max_length=16)
    agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001 - None: nobody
    opened_position = models.BigIntegerField()
    version = models.IntegerField()
    orphaned = models.BooleanField(default=False)  # its agent went offline
    avoid_agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001
    team_id = models.UUIDField(null=True)  # None: any agent; else one of the team's members

    class Meta:
        db_table = "rm_assign_ticket"
        indexes = [
            models.Index(fields=["agent_id", "status"], name="rm_assign_ticket_agent"),
            models.Index(
                fields=["opened_position"],
                name="rm_assign_ticket_backlog",
                condition=models.Q(status="open") | models.Q(orphaned=True),
            ),
        ]

    def __str__(self) -> str:
        return f"assignable ticket {self.id}"


class AssignmentDecisionRecord(models.Model):
    """A decision of the assignment manager, from its batch until the manager has seen the
    ticket change (then it is deleted). Pending decisions count against the agent's capacity;
    one lost after the commit is issued again after a grace period. Never rebuilt."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REFUSED = "refused"  # the ticket had changed: decided again once that change is seen

    id = models.BigAutoField(primary_key=True)
    ticket_id = models.UUIDField()
    expected_version = models.IntegerField()
    agent_id = models.CharField(max_length=64)
    policy = models.CharField(max_length=32)
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_at = models.DateTimeField()
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(default="")

    class Meta:
        db_table = "assignment_decision"
        constraints = [
            models.UniqueConstraint(
                fields=["ticket_id", "expected_version"], name="assignment_decision_once"
            )
        ]
        indexes = [models.Index(fields=["agent_id", "status"], name="assignment_decision_agent")]

    def __str__(self) -> str:
        return f"decision {self.ticket_id}@{self.expected_version} -> {self.agent_id}"


class AssignmentCursorRecord(models.Model):
    """Where the round-robin rotation continues: the agent chosen last. Never rebuilt."""

    name = models.CharField(primary_key=True, max_length=64)
    last_agent_id = models.CharField(max_length=64, null=True)  # noqa: DJ001 - None: none yet

    class Meta:
        db_table = "assignment_cursor"

    def __str__(self) -> str:
        return f"{self.name} after {self.last_agent_id}"


class SlaRecord(models.Model):
    """A ticket's SLA clock (``projections.sla``) and the deadlines the current rules give."""

    ticket_id = models.UUIDField(primary_key=True)
    priority = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    opened_at = models.DateTimeField()
    pauses = models.JSONField(default=list)  # [[start, end], ...] ISO times, ended pauses
    paused_since = models.DateTimeField(null=True)
    first_response_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    breaches = ArrayField(models.CharField(max_length=32), default=list)
    first_response_due = models.DateTimeField(null=True)  # null: clock stopped short of it
    resolution_due = models.DateTimeField(null=True)
    # The deadline each target's reminder (SlaReminderDue) was recorded for; null: none yet.
    first_response_reminded = models.DateTimeField(null=True)
    resolution_reminded = models.DateTimeField(null=True)
    version = models.IntegerField()
    position = models.BigIntegerField()

    class Meta:
        db_table = "rm_sla"

    def __str__(self) -> str:
        return f"sla {self.ticket_id}"


class AssignTeamRecord(models.Model):
    """What the assignment process manager knows of a team: its name and members."""

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=80)
    archived = models.BooleanField(default=False)
    members = ArrayField(models.CharField(max_length=64), default=list)
    version = models.IntegerField()

    class Meta:
        db_table = "rm_assign_team"

    def __str__(self) -> str:
        return f"team {self.name}"


class ProjectionRebuild(models.Model):
    """A rebuild started from the admin console, and its progress (polled by the page)."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True)
    projector = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    rate = models.FloatField(default=0.0)
    position = models.BigIntegerField(null=True)
    error = models.TextField(blank=True, default="")
    started_by = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "admin_projection_rebuild"
        indexes = [models.Index(fields=["-started_at"], name="admin_rebuild_started")]

    def __str__(self) -> str:
        return f"rebuild of {self.projector} ({self.state})"
