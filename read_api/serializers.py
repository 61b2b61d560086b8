"""Response shapes of the read side."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from infra.postgres.models import MessageRecord, NotificationRecord, TicketRecord


class TicketSerializer(serializers.ModelSerializer[TicketRecord]):
    class Meta:
        model = TicketRecord
        fields = [
            "id", "customer_id", "subject", "description", "status", "priority", "tags",
            "language", "assigned_agent_id", "version", "position", "created_at", "updated_at",
            "last_message_at", "resolved_at", "closed_at", "message_count",
            "sla_breaches", "sla_first_response_due", "sla_resolution_due",
        ]  # fmt: skip

    # From the SLA projection (annotated by the views): null while the clock is stopped short
    # of the target (waiting on the customer, resolved) or before the projector has run.
    sla_first_response_due = serializers.DateTimeField(read_only=True, allow_null=True)
    sla_resolution_due = serializers.DateTimeField(read_only=True, allow_null=True)


class CustomerTicketSerializer(TicketSerializer):
    """What a customer sees: counts without internal notes, no SLA bookkeeping, and the
    version, position and times of the last public event (internal notes move none)."""

    message_count = serializers.IntegerField(source="public_message_count")
    version = serializers.IntegerField(source="public_version")
    position = serializers.IntegerField(source="public_position")
    updated_at = serializers.DateTimeField(source="public_updated_at")
    last_message_at = serializers.DateTimeField(source="public_last_message_at", allow_null=True)

    class Meta(TicketSerializer.Meta):
        fields = [f for f in TicketSerializer.Meta.fields if not f.startswith("sla_")]


class MessageSerializer(serializers.ModelSerializer[MessageRecord]):
    class Meta:
        model = MessageRecord
        fields = [
            "id", "ticket_id", "version", "author_id", "author_role", "body", "internal",
            "attachments", "posted_at", "position",
        ]  # fmt: skip


class NotificationSerializer(serializers.ModelSerializer[NotificationRecord]):
    read = serializers.BooleanField(read_only=True)  # annotated: the user's read mark exists

    class Meta:
        model = NotificationRecord
        fields = ["id", "kind", "ticket_id", "payload", "read", "created_at", "position"]


class NotificationReadSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    read = serializers.BooleanField()
    unread_count = serializers.IntegerField()


class ReadAllResultSerializer(serializers.Serializer[Any]):
    marked = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class CustomerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    company = serializers.CharField()
    phone = serializers.CharField()
    open_tickets = serializers.IntegerField()
    total_tickets = serializers.IntegerField()


class AgentWorkloadSerializer(serializers.Serializer[Any]):
    user_id = serializers.CharField()
    name = serializers.CharField()
    availability = serializers.CharField()
    capacity = serializers.IntegerField()
    skills = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    open_tickets = serializers.IntegerField()
