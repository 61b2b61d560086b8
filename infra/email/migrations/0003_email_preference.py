"""Users' choice of optional e-mails: SLA reminders and breaches (ADR 0047)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("email", "0002_default_templates"),
    ]

    operations = [
        migrations.CreateModel(
            name="EmailPreference",
            fields=[
                ("user_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("sla_emails", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"db_table": "email_preference"},
        ),
    ]
