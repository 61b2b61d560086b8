"""``rm_ticket.attachments``: the ticket's files with their scan status (ADR 0029)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0014_ticket_public_view"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticketrecord",
            name="attachments",
            field=models.JSONField(default=list),
        ),
    ]
