"""Admin endpoints: the e-mail templates (read, edit, reset) and the local outbox of ``make run``.

Only admins may use them (403 ``forbidden`` otherwise). A template is validated before it is
stored: an unknown placeholder, a broken ``${`` or Django/Jinja syntax is a 400 naming the
field; the HTML part is stored sanitized.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api import StrictCharField, StrictSerializer
from infra.email import templates
from infra.email.models import EmailTemplate, stored_template
from infra.email.outbox import FileOutboxEmailSender


def _require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != "admin":
        raise PermissionDenied("Only admins manage e-mail settings.")


def _kind(kind: str) -> str:
    if kind not in templates.KINDS:
        raise NotFound(f"No e-mail template {kind!r}; kinds: {', '.join(templates.KINDS)}.")
    return kind


class EmailTemplateSerializer(serializers.Serializer[dict[str, Any]]):
    kind = serializers.CharField()
    subject = serializers.CharField()
    text_body = serializers.CharField()
    html_body = serializers.CharField()
    placeholders = serializers.ListField(child=serializers.CharField())
    is_default = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_blank=True)


class EmailTemplateInput(StrictSerializer):
    subject = StrictCharField(max_length=templates.SUBJECT_MAX, trim_whitespace=False)
    text_body = StrictCharField(max_length=templates.BODY_MAX, trim_whitespace=False)
    html_body = StrictCharField(max_length=templates.BODY_MAX, trim_whitespace=False)


def _present(kind: str) -> dict[str, Any]:
    parts, row = stored_template(kind)
    return {
        "kind": kind,
        "subject": parts.subject,
        "text_body": parts.text_body,
        "html_body": parts.html_body,
        "placeholders": list(templates.PLACEHOLDERS[kind]),
        "is_default": parts == templates.DEFAULTS[kind],
        "updated_at": row.updated_at if row else None,
        "updated_by": row.updated_by if row else "",
    }


@extend_schema(tags=["settings"])
class EmailTemplateListView(APIView):
    @extend_schema(responses={200: EmailTemplateSerializer(many=True)})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        return Response([EmailTemplateSerializer(_present(k)).data for k in templates.KINDS])


@extend_schema(tags=["settings"])
class EmailTemplateView(APIView):
    @extend_schema(responses={200: EmailTemplateSerializer})
    def get(self, request: Request, kind: str) -> Response:
        _require_admin(request)
        return Response(EmailTemplateSerializer(_present(_kind(kind))).data)

    @extend_schema(request=EmailTemplateInput, responses={200: EmailTemplateSerializer})
    def put(self, request: Request, kind: str) -> Response:
        _require_admin(request)
        _kind(kind)
        data = EmailTemplateInput.validated(request.data)
        parts = templates.TemplateParts(data["subject"], data["text_body"], data["html_body"])
        errors = templates.validate(kind, parts)
        if errors:
            raise ValidationError(errors)
        parts = templates.clean(kind, parts)
        with transaction.atomic():
            EmailTemplate.objects.update_or_create(
                kind=kind,
                defaults={
                    "subject": parts.subject,
                    "text_body": parts.text_body,
                    "html_body": parts.html_body,
                    "updated_by": str(request.user.pk),
                },
            )
        return Response(EmailTemplateSerializer(_present(kind)).data)

    @extend_schema(responses={200: EmailTemplateSerializer})
    def delete(self, request: Request, kind: str) -> Response:
        """Go back to the built-in default."""
        _require_admin(request)
        EmailTemplate.objects.filter(kind=_kind(kind)).delete()
        return Response(EmailTemplateSerializer(_present(kind)).data)


class OutboxEntrySerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    to = serializers.CharField()
    sender = serializers.CharField()
    subject = serializers.CharField()
    date = serializers.CharField()
    message_id = serializers.CharField()
    stored_at = serializers.DateTimeField()
    size = serializers.IntegerField()


class OutboxMessageSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    to = serializers.CharField()
    sender = serializers.CharField()
    subject = serializers.CharField()
    date = serializers.CharField()
    message_id = serializers.CharField()
    text = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True)


def _outbox() -> FileOutboxEmailSender:
    return FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR)


@extend_schema(tags=["settings"])
class OutboxListView(APIView):
    """The messages in the local outbox, newest first (at most ``limit``, default 100)."""

    @extend_schema(responses={200: OutboxEntrySerializer(many=True)})
    def get(self, request: Request) -> Response:
        _require_admin(request)
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise ValidationError({"limit": ["An integer from 1 to 1000."]})
        entries = _outbox().entries()[: int(raw)]
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
        _require_admin(request)
        msg = _outbox().message(name)
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
