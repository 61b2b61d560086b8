"""Admin commands on the e-mail templates: edit and reset.

Only admins may use them (403 ``forbidden`` otherwise). A template is validated before it is
stored: an unknown placeholder, a broken ``${`` or Django/Jinja syntax is a 400 naming the
field; the HTML part is stored sanitized.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_api.admin_audit import record
from infra.api import StrictSerializer
from infra.email import templates
from infra.email.api import (
    EmailTemplateInput,
    EmailTemplateSerializer,
    present_template,
    require_admin,
    template_kind,
)
from infra.email.models import EmailPreference, EmailTemplate


@extend_schema(tags=["settings"])
class EmailTemplateEditView(APIView):
    """PUT: edit a template. DELETE: go back to the built-in default."""

    @extend_schema(request=EmailTemplateInput, responses={200: EmailTemplateSerializer})
    def put(self, request: Request, kind: str) -> Response:
        require_admin(request)
        template_kind(kind)
        data = EmailTemplateInput.validated(request.data)
        parts = templates.TemplateParts(data["subject"], data["text_body"], data["html_body"])
        errors = templates.validate(kind, parts)
        if errors:
            raise ValidationError(errors)
        parts = templates.clean(kind, parts)
        with transaction.atomic():
            before = _parts(present_template(kind))
            EmailTemplate.objects.update_or_create(
                kind=kind,
                defaults={
                    "subject": parts.subject,
                    "text_body": parts.text_body,
                    "html_body": parts.html_body,
                    "updated_by": str(request.user.pk),
                },
            )
            after = present_template(kind)
            record(request, "settings.email_template", f"email_template:{kind}", before,
                   _parts(after))  # fmt: skip
        return Response(EmailTemplateSerializer(after).data)

    @extend_schema(responses={200: EmailTemplateSerializer})
    def delete(self, request: Request, kind: str) -> Response:
        """Go back to the built-in default."""
        require_admin(request)
        with transaction.atomic():
            before = _parts(present_template(template_kind(kind)))
            deleted, _ = EmailTemplate.objects.filter(kind=kind).delete()
            after = present_template(kind)
            if deleted:
                record(request, "settings.email_template", f"email_template:{kind}", before,
                       _parts(after))  # fmt: skip
        return Response(EmailTemplateSerializer(after).data)


def _parts(presented: dict[str, Any]) -> dict[str, Any]:
    return {k: presented[k] for k in ("subject", "text_body", "html_body")}


class EmailPreferencesInput(StrictSerializer):
    sla_emails = serializers.BooleanField(
        help_text="E-mail me SLA reminders and breaches of my tickets (in-app: always)."
    )


@extend_schema(tags=["notifications"])
class EmailPreferencesEditView(APIView):
    @extend_schema(request=EmailPreferencesInput, responses={200: EmailPreferencesInput})
    def put(self, request: Request) -> Response:
        """Choose your optional e-mails (agents and admins; customers get 403). Your own
        data, written directly (like read marks): no ticket changes."""
        if getattr(request.user, "role", None) not in ("agent", "admin"):
            raise PermissionDenied("Only agents and admins have SLA e-mails.")
        data = EmailPreferencesInput.validated(request.data)
        EmailPreference.objects.update_or_create(
            user_id=str(request.user.pk), defaults={"sla_emails": data["sla_emails"]}
        )
        return Response({"sla_emails": data["sla_emails"]})
