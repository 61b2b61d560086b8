"""The stored e-mail templates: one row per notification kind, edited by admins."""

from __future__ import annotations

from django.db import models

from infra.email.templates import DEFAULTS, TemplateParts


class EmailTemplate(models.Model):
    """Subject, plain-text body and HTML body of one kind of notification e-mail.

    They hold ``${placeholder}`` fields only (``infra.email.templates``), never template code.
    A kind without a row falls back to the built-in default.
    """

    kind = models.CharField(primary_key=True, max_length=32)
    subject = models.CharField(max_length=200)
    text_body = models.TextField()
    html_body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")  # a user id; "" = default

    class Meta:
        db_table = "email_template"

    def __str__(self) -> str:
        return f"e-mail template {self.kind}"


def stored_template(kind: str) -> tuple[TemplateParts, EmailTemplate | None]:
    """The template in force for ``kind``: the admin's row, else the built-in default."""
    row = EmailTemplate.objects.filter(kind=kind).first()
    if row is None:
        return DEFAULTS[kind], None
    return TemplateParts(row.subject, row.text_body, row.html_body), row


class EmailPreference(models.Model):
    """A user's own choice of optional e-mails (ADR 0047): SLA reminders and breaches."""

    user_id = models.CharField(primary_key=True, max_length=64)
    sla_emails = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "email_preference"

    def __str__(self) -> str:
        return f"e-mail preferences of {self.user_id}"


def wants_sla_emails(user_id: str) -> bool:
    return EmailPreference.objects.filter(user_id=user_id, sla_emails=True).exists()
