"""The settings a fresh installation starts with (seeded by a data migration)."""

from __future__ import annotations

from typing import Any

# Minutes of business time, per priority: first staff reply, resolution.
SLA_MINUTES: dict[str, tuple[int, int]] = {
    "urgent": (60, 8 * 60),
    "high": (4 * 60, 2 * 8 * 60),
    "medium": (8 * 60, 5 * 8 * 60),
    "low": (2 * 8 * 60, 10 * 8 * 60),
}
_OFFICE = [["09:00", "17:00"]]
CALENDAR: dict[str, Any] = {
    "time_zone": "UTC",
    "weekly_hours": {
        "mon": _OFFICE,
        "tue": _OFFICE,
        "wed": _OFFICE,
        "thu": _OFFICE,
        "fri": _OFFICE,
        "sat": [],
        "sun": [],
    },
    "holidays": [],
}
ASSIGNMENT_POLICY = "least_loaded"
# Minutes before an SLA deadline the assigned agent is reminded (0: never).
SLA_REMINDER_MINUTES = 30
SLA_REMINDER_MAX = 7 * 24 * 60
