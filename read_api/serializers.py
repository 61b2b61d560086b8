"""Response shapes of the read side."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from domain.lifecycle import Priority, Role, Status
from infra.markdown import render_markdown
from infra.postgres.models import MessageRecord, NotificationRecord, TicketRecord
from infra.storage.links import sign_link

# Choice fields on the response shapes: the schema (and the web app's types generated from
# it) then lists the values instead of saying "any string".
STATUSES = [s.value for s in Status]
PRIORITIES = [p.value for p in Priority]
AVAILABILITIES = ["online", "away", "offline"]
# projections.notifications.KINDS (importing it would load domain.ticket, which the read side
# never does); tests/unit/test_web_generated.py keeps the two equal.
NOTIFICATION_KINDS = [
    "public_reply", "internal_note", "status_changed", "assigned", "unassigned", "sla_reminder",
    "sla_breached",
]  # fmt: skip


def always_present(*names: str) -> dict[str, dict[str, bool]]:
    """``extra_kwargs`` for model fields with a default, which DRF would mark optional: in a
    response they are always there, and the schema should say so."""
    return {name: {"required": True} for name in names}


SCAN_STATUSES = ["scanning", "clean", "infected"]


class TicketFileSerializer(serializers.Serializer[Any]):
    """One uploaded file as a reader sees it; ``url`` (a short-lived signed link for this
    user) only once the scan said clean."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    content_type = serializers.CharField(help_text="Detected from the content.")
    size = serializers.IntegerField()
    message_id = serializers.UUIDField(allow_null=True)
    internal = serializers.BooleanField()
    uploader_id = serializers.CharField()
    uploader_role = serializers.CharField()
    uploaded_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=SCAN_STATUSES)
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
            "team_id",
            "satisfaction_rating", "satisfaction_comment", "satisfaction_at",
        ]  # fmt: skip
        # Not sla_breaches: customers do not get it (CustomerTicketSerializer).
        extra_kwargs = always_present(
            "tags", "assigned_agent_id", "last_message_at", "resolved_at", "closed_at",
            "message_count", "satisfaction_rating", "satisfaction_comment", "satisfaction_at",
        )  # fmt: skip

    status = serializers.ChoiceField(choices=STATUSES)
    priority = serializers.ChoiceField(choices=PRIORITIES)
    # From the SLA projection (annotated by the views): null while the clock is stopped short
    # of the target (waiting on the customer, resolved) or before the projector has run.
    # Not required (rather than read-only, which the schema would call always present): a
    # customer's tickets leave them out, like sla_breaches. This serializer never reads input.
    sla_first_response_due = serializers.DateTimeField(required=False, allow_null=True)
    sla_resolution_due = serializers.DateTimeField(required=False, allow_null=True)
    # Staff only, like the SLA fields: null when the ticket belongs to no team.
    team_id = serializers.CharField(
        required=False, allow_null=True, help_text="The team the ticket is routed to (staff)."
    )
    attachments = serializers.SerializerMethodField(
        help_text="Uploaded files (the ticket's own and its messages'), by scan state."
    )

    @extend_schema_field(TicketFileSerializer(many=True))
    def get_attachments(self, ticket: TicketRecord) -> list[dict[str, Any]]:
        reader, staff = _reader(self.context)
        return visible_attachments(ticket.attachments, ticket.id, user_id=reader, staff=staff)


class CustomerTicketSerializer(TicketSerializer):
    """What a customer sees: counts without internal notes, no SLA bookkeeping, the position
    and times of the last public event, and the ticket's public version (how many public
    events it has had: 1, 2, 3, ...), so internal notes move none of them."""

    message_count = serializers.IntegerField(source="public_message_count")
    version = serializers.IntegerField(source="public_version")
    position = serializers.IntegerField(source="public_position")
    updated_at = serializers.DateTimeField(source="public_updated_at")
    last_message_at = serializers.DateTimeField(source="public_last_message_at", allow_null=True)

    class Meta(TicketSerializer.Meta):
        fields = [
            f for f in TicketSerializer.Meta.fields if not f.startswith("sla_") and f != "team_id"
        ]


class MessageAttachmentSerializer(serializers.Serializer[Any]):
    """The shape of one stored attachment (schema only: the field returns what is stored)."""

    name = serializers.CharField()
    content_type = serializers.CharField(required=False)
    size = serializers.IntegerField(required=False)


@extend_schema_field(MessageAttachmentSerializer(many=True))
class AttachmentsField(serializers.JSONField):
    pass


@extend_schema_field(OpenApiTypes.OBJECT)
class PayloadField(serializers.JSONField):
    """A JSON object whose keys depend on a kind (documented beside the kind)."""


class MessageSerializer(serializers.ModelSerializer[MessageRecord]):
    author_role = serializers.ChoiceField(choices=[r.value for r in Role])
    attachments = AttachmentsField()
    body_html = serializers.SerializerMethodField(
        help_text="The body rendered from its Markdown subset (emphasis, lists, code, links, "
        "quotes) and sanitised on the server: the only form a client may insert as HTML."
    )
    files = serializers.SerializerMethodField(
        help_text="The files uploaded to this message (``attachments`` is the metadata a "
        "message body may list)."
    )

    class Meta:
        model = MessageRecord
        fields = [
            "id", "ticket_id", "version", "author_id", "author_role", "body", "body_html",
            "internal", "attachments", "files", "posted_at", "position",
        ]  # fmt: skip

    @extend_schema_field(OpenApiTypes.STR)
    def get_body_html(self, message: MessageRecord) -> str:
        return render_markdown(message.body)

    @extend_schema_field(TicketFileSerializer(many=True))
    def get_files(self, message: MessageRecord) -> list[dict[str, Any]]:
        by_message: dict[str, list[dict[str, Any]]] = self.context.get("files_by_message", {})
        return by_message.get(str(message.id), [])


class CustomerMessageSerializer(MessageSerializer):
    """A message as a customer sees it: its version is the ticket's public version with it."""

    version = serializers.IntegerField(source="public_version")


class NotificationSerializer(serializers.ModelSerializer[NotificationRecord]):
    read = serializers.BooleanField(read_only=True)  # annotated: the user's read mark exists
    kind = serializers.ChoiceField(choices=NOTIFICATION_KINDS)
    payload = PayloadField()

    class Meta:
        model = NotificationRecord
        fields = ["id", "kind", "ticket_id", "payload", "read", "created_at", "position"]
        extra_kwargs = always_present("ticket_id")


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


class TeamOptionSerializer(serializers.Serializer[Any]):
    """A team a ticket can be routed to."""

    id = serializers.UUIDField()
    name = serializers.CharField()


class AgentWorkloadSerializer(serializers.Serializer[Any]):
    user_id = serializers.CharField()
    name = serializers.CharField()
    availability = serializers.ChoiceField(choices=AVAILABILITIES)
    capacity = serializers.IntegerField()
    skills = serializers.ListField(child=serializers.CharField())
    languages = serializers.ListField(child=serializers.CharField())
    open_tickets = serializers.IntegerField()


class AuditMessageSerializer(serializers.Serializer[Any]):
    """A message as the aggregate keeps it, in a ticket rebuilt from its events."""

    id = serializers.UUIDField()
    version = serializers.IntegerField()
    author_id = serializers.CharField()
    author_role = serializers.ChoiceField(choices=[r.value for r in Role])
    body = serializers.CharField()
    internal = serializers.BooleanField()
    attachments = MessageAttachmentSerializer(many=True)
    posted_at = serializers.DateTimeField()


class AuditFileSerializer(serializers.Serializer[Any]):
    """A file as the aggregate keeps it (``domain.attachment.Attachment.as_dict``)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    uploader_id = serializers.CharField()
    uploader_role = serializers.CharField()
    message_id = serializers.UUIDField(allow_null=True)
    internal = serializers.BooleanField()
    status = serializers.ChoiceField(choices=SCAN_STATUSES)


class TicketAsOfSerializer(serializers.Serializer[Any]):
    """``GET /api/tickets/{id}?as_of=``: the ticket as it was at a time or version, rebuilt
    from its events by the write side (command_api.presenters); described here, with the URL's
    GET."""

    id = serializers.UUIDField()
    version = serializers.IntegerField()
    customer_id = serializers.CharField()
    subject = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=[s.value for s in Status])
    priority = serializers.ChoiceField(choices=[p.value for p in Priority])
    tags = serializers.ListField(child=serializers.CharField())
    language = serializers.CharField()
    assigned_agent_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    messages = AuditMessageSerializer(many=True)
    attachments = AuditFileSerializer(many=True)
