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

    class Meta:
        db_table = "projection_position"

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


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
    """Per-user in-app notifications (filled by the notification projector, a later issue)."""

    id = models.UUIDField(primary_key=True)
    user_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    ticket_id = models.UUIDField(null=True)
    payload = models.JSONField(default=dict)
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    position = models.BigIntegerField()

    class Meta:
        db_table = "rm_notification"
        indexes = [models.Index(fields=["user_id", "created_at"], name="rm_notification_user")]

    def __str__(self) -> str:
        return f"notification {self.id}"


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
            models.Index(fields=["ticket_id"], name="rm_search_doc_ticket"),
        ]

    def __str__(self) -> str:
        return self.key
