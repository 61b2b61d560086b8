"""The e-mail settings' HTTP shapes, shared by the read side (GET) and the command side
(PUT, DELETE): admin check, serializers and the presentation of a template."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request

from infra.api import StrictCharField, StrictSerializer
from infra.email import templates
from infra.email.models import stored_template
from infra.email.outbox import FileOutboxEmailSender


def require_admin(request: Request) -> None:
    if getattr(request.user, "role", None) != "admin":
        raise PermissionDenied("Only admins manage e-mail settings.")


def template_kind(kind: str) -> str:
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


def present_template(kind: str) -> dict[str, Any]:
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


def local_outbox() -> FileOutboxEmailSender:
    return FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR)
