"""The automation settings as tables: one row per priority, and two single-row tables.

Values are validated by the domain (``domain.sla``, ``domain.assignment``) before they are
stored, so everything here parses; ``infra.automation.rules`` turns rows into domain objects.
"""

from __future__ import annotations

from django.db import models

SINGLETON = 1


class SlaPolicySetting(models.Model):
    priority = models.CharField(primary_key=True, max_length=16)
    first_response_minutes = models.IntegerField()
    resolution_minutes = models.IntegerField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")  # "" = the default

    class Meta:
        db_table = "settings_sla_policy"

    def __str__(self) -> str:
        return f"SLA {self.priority}"


class BusinessCalendarSetting(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    time_zone = models.CharField(max_length=64)
    weekly_hours = models.JSONField()  # {"mon": [["09:00", "17:00"]], ...}
    holidays = models.JSONField(default=list)  # ["2026-12-25", ...]
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_business_calendar"

    def __str__(self) -> str:
        return f"business calendar ({self.time_zone})"


class AssignmentSetting(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    policy = models.CharField(max_length=32)  # round_robin | least_loaded
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_assignment"

    def __str__(self) -> str:
        return f"assignment {self.policy}{'' if self.enabled else ' (off)'}"


class TicketIntakeSetting(models.Model):
    """What customers may choose when they open a ticket (tags never: they are staff's)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    customers_set_priority = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_ticket_intake"

    def __str__(self) -> str:
        return f"ticket intake (customers set priority: {self.customers_set_priority})"


class SlaReminderSetting(models.Model):
    """How long before an SLA deadline the assigned agent is reminded (0: no reminders)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    minutes_before = models.PositiveIntegerField(default=30)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_sla_reminder"

    def __str__(self) -> str:
        return f"SLA reminders {self.minutes_before} min before"
