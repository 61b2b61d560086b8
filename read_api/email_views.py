"""Admin queries: the e-mail templates and the local outbox of ``make run``.

Only admins may use them (403 ``forbidden`` otherwise).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from domain.numbers import parse_natural
from infra.email import templates
from infra.email.api import (
    EmailTemplateInput,
    EmailTemplateSerializer,
    OutboxEntrySerializer,
    OutboxMessageSerializer,
    local_outbox,
    present_template,
    require_admin,
    template_kind,
)


@extend_schema(tags=["settings"])
class EmailTemplateListView(APIView):
    @extend_schema(responses={200: EmailTemplateSerializer(many=True)})
    def get(self, request: Request) -> Response:
        require_admin(request)
        return Response(
            [EmailTemplateSerializer(present_template(k)).data for k in templates.KINDS]
        )


@extend_schema(tags=["settings"])
class EmailTemplateView(APIView):
    @extend_schema(responses={200: EmailTemplateSerializer})
    def get(self, request: Request, kind: str) -> Response:
        require_admin(request)
        return Response(EmailTemplateSerializer(present_template(template_kind(kind))).data)


MAX_LIMIT = 1000


class OutboxListSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField(help_text="Whether mail goes to the local outbox.")
    count = serializers.IntegerField()
    results = OutboxEntrySerializer(many=True)


@extend_schema(tags=["settings"])
class OutboxListView(APIView):
    """The messages in the local outbox, newest first (at most ``limit``, default 100)."""

    @extend_schema(
        operation_id="outbox_list",
        parameters=[
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"At most this many, 1-{MAX_LIMIT}."
            )
        ],
        responses={200: OutboxListSerializer},
    )
    def get(self, request: Request) -> Response:
        require_admin(request)
        limit = parse_natural(request.query_params.get("limit", "100"))
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError({"limit": [f"An integer from 1 to {MAX_LIMIT}."]})
        entries = local_outbox().entries()[:limit]
        return Response(
            {
                "enabled": settings.EMAIL_OUTBOX,
                "count": len(entries),
                "results": OutboxEntrySerializer(entries, many=True).data,
            }
        )


@extend_schema(tags=["settings"])
class OutboxMessageView(APIView):
    """One message of the local outbox with both parts."""

    @extend_schema(responses={200: OutboxMessageSerializer})
    def get(self, request: Request, name: str) -> Response:
        require_admin(request)
        msg = local_outbox().message(name)
        if msg is None:
            raise NotFound("No such message in the outbox.")
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        data = {
            "name": name,
            "to": str(msg["To"] or ""),
            "sender": str(msg["From"] or ""),
            "subject": str(msg["Subject"] or ""),
            "date": str(msg["Date"] or ""),
            "message_id": str(msg["Message-ID"] or ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        return Response(OutboxMessageSerializer(data).data)


# Sample values the preview fills the placeholders with.
SAMPLE = {
    "site_name": "Deskstream",
    "recipient_name": "Ada Customer",
    "customer_name": "Ada Customer",
    "ticket_subject": "Printer on fire",
    "ticket_id": "5f0c6f0e-0000-4000-8000-000000000042",
    "ticket_url": "https://desk.example/tickets/5f0c6f0e-0000-4000-8000-000000000042",
    "status": "resolved",
    "previous_status": "in_progress",
    "author_name": "Grace Agent",
    "message_excerpt": "We replaced the toner; it should print (not burn) now.",
    "agent_name": "Grace Agent",
    "assigned_by": "automation",
}


class EmailPreviewSerializer(serializers.Serializer[Any]):
    subject = serializers.CharField()
    text = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True)
    problems = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="What saving this draft would refuse, per field (empty: it would be saved).",
    )


@extend_schema(tags=["settings"])
class EmailTemplatePreviewView(APIView):
    @extend_schema(request=EmailTemplateInput, responses={200: EmailPreviewSerializer})
    def post(self, request: Request, kind: str) -> Response:
        """Render a draft of the template with sample values, storing nothing (the live
        preview of the editor). ``problems`` lists what saving it would refuse."""
        require_admin(request)
        template_kind(kind)
        data = EmailTemplateInput.validated(request.data)
        parts = templates.TemplateParts(data["subject"], data["text_body"], data["html_body"])
        rendered = templates.render(kind, parts, SAMPLE)
        return Response(
            {
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
                "problems": templates.validate(kind, parts),
            }
        )
