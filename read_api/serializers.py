"""Response shapes of the read side."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from infra.postgres.models import MessageRecord, NotificationRecord, TicketRecord
from infra.storage.links import sign_link


class AttachmentSerializer(serializers.Serializer[Any]):
    """One file as a reader sees it; ``url`` (a short-lived signed link for this user) only
    once the scan said clean."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    message_id = serializers.UUIDField(allow_null=True)
    internal = serializers.BooleanField()
    uploader_id = serializers.CharField()
    uploader_role = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["scanning", "clean", "infected"])
    url = serializers.CharField(allow_null=True)
    url_expires_at = serializers.IntegerField(allow_null=True, help_text="Unix seconds")


def visible_attachments(
    files: list[dict[str, Any]], ticket_id: UUID, *, user_id: str, staff: bool
) -> list[dict[str, Any]]:
    """The files this user may see (customers: no internal ones), with a download link for
    each clean one. The download itself asks the ticket again (``command_api.attachments``)."""
    out = []
    for item in files:
        if item["internal"] and not staff:
            continue
        url, expires = None, None
        if item["status"] == "clean":
            url, expires = sign_link(
                settings.SECRET_KEY,
                attachment_id=UUID(item["id"]),
                ticket_id=ticket_id,
                user_id=user_id,
                ttl=settings.ATTACHMENT_LINK_TTL,
            )
        out.append({**item, "url": url, "url_expires_at": expires})
    return out


def _reader(context: dict[str, Any]) -> tuple[str, bool]:
    user = context["request"].user
    return str(user.pk), user.role != "customer"


class TicketSerializer(serializers.ModelSerializer[TicketRecord]):
    class Meta:
        model = TicketRecord
        fields = [
            "id", "customer_id", "subject", "description", "status", "priority", "tags",
            "language", "assigned_agent_id", "version", "position", "created_at", "updated_at",
            "last_message_at", "resolved_at", "closed_at", "message_count",
            "sla_breaches", "sla_first_response_due", "sla_resolution_due", "attachments",
        ]  # fmt: skip

    attachments = serializers.SerializerMethodField()

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, ticket: TicketRecord) -> list[dict[str, Any]]:
        reader, staff = _reader(self.context)
        return visible_attachments(ticket.attachments, ticket.id, user_id=reader, staff=staff)

    # From the SLA projection (annotated by the views): null while the clock is stopped short
    # of the target (waiting on the customer, resolved) or before the projector has run.
    sla_first_response_due = serializers.DateTimeField(read_only=True, allow_null=True)
    sla_resolution_due = serializers.DateTimeField(read_only=True, allow_null=True)


class CustomerTicketSerializer(TicketSerializer):
    """What a customer sees: counts without internal notes, no SLA bookkeeping."""

    message_count = serializers.IntegerField(source="public_message_count")

    class Meta(TicketSerializer.Meta):
        fields = [f for f in TicketSerializer.Meta.fields if not f.startswith("sla_")]


class MessageSerializer(serializers.ModelSerializer[MessageRecord]):
    class Meta:
        model = MessageRecord
        fields = [
            "id", "ticket_id", "version", "author_id", "author_role", "body", "internal",
            "attachments", "files", "posted_at", "position",
        ]  # fmt: skip

    files = serializers.SerializerMethodField(
        help_text="The files uploaded to this message (``attachments`` is the metadata a "
        "message body may list)."
    )

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_files(self, message: MessageRecord) -> list[dict[str, Any]]:
        by_message: dict[str, list[dict[str, Any]]] = self.context.get("files_by_message", {})
        return by_message.get(str(message.id), [])


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
