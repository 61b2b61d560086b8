"""How long before an SLA deadline agents are reminded (ADR 0047)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0003_ticket_intake"),
    ]

    operations = [
        migrations.CreateModel(
            name="SlaReminderSetting",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("minutes_before", models.PositiveIntegerField(default=30)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("updated_by", models.CharField(blank=True, default="", max_length=64)),
            ],
            options={"db_table": "settings_sla_reminder"},
        ),
    ]
