"""SLA reminders (``rm_sla``) and satisfaction ratings (``rm_ticket``), ADR 0047."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0018_outbox_claims"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticketrecord",
            name="satisfaction_rating",
            field=models.SmallIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="ticketrecord",
            name="satisfaction_comment",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="ticketrecord",
            name="satisfaction_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="slarecord",
            name="first_response_reminded",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="slarecord",
            name="resolution_reminded",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddIndex(
            model_name="notificationoutboxrecord",
            index=models.Index(fields=["ticket_id", "position"], name="notification_outbox_ticket"),
        ),
    ]
