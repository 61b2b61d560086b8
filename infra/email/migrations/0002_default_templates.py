"""The built-in templates as editable rows (``DELETE`` on a template goes back to them too)."""

from typing import Any

from django.db import migrations

from infra.email.templates import DEFAULTS


def add_defaults(apps: Any, schema_editor: Any) -> None:
    EmailTemplate = apps.get_model("email", "EmailTemplate")  # noqa: N806
    for kind, parts in DEFAULTS.items():
        EmailTemplate.objects.get_or_create(
            kind=kind,
            defaults={
                "subject": parts.subject,
                "text_body": parts.text_body,
                "html_body": parts.html_body,
            },
        )


def remove_defaults(apps: Any, schema_editor: Any) -> None:
    apps.get_model("email", "EmailTemplate").objects.filter(updated_by="").delete()


class Migration(migrations.Migration):
    dependencies = [("email", "0001_email_templates")]

    operations = [migrations.RunPython(add_defaults, remove_defaults)]
