"""The default SLA rules, business calendar and assignment policy as editable rows."""

from typing import Any

from django.db import migrations

from infra.automation import defaults


def add_defaults(apps: Any, schema_editor: Any) -> None:
    SlaPolicySetting = apps.get_model("automation", "SlaPolicySetting")  # noqa: N806
    for priority, (first, resolution) in defaults.SLA_MINUTES.items():
        SlaPolicySetting.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution},
        )
    apps.get_model("automation", "BusinessCalendarSetting").objects.get_or_create(
        id=1,
        defaults={
            "time_zone": defaults.CALENDAR["time_zone"],
            "weekly_hours": defaults.CALENDAR["weekly_hours"],
            "holidays": defaults.CALENDAR["holidays"],
        },
    )
    apps.get_model("automation", "AssignmentSetting").objects.get_or_create(
        id=1, defaults={"policy": defaults.ASSIGNMENT_POLICY, "enabled": True}
    )


def remove_defaults(apps: Any, schema_editor: Any) -> None:
    for name in ("SlaPolicySetting", "BusinessCalendarSetting", "AssignmentSetting"):
        apps.get_model("automation", name).objects.filter(updated_by="").delete()


class Migration(migrations.Migration):
    dependencies = [("automation", "0001_initial")]

    operations = [migrations.RunPython(add_defaults, remove_defaults)]
