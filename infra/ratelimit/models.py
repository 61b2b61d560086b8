"""Tables of the rate limiter: one counter per key (PostgreSQL backend) and the admin's
limits (one row; absent means the defaults)."""

from __future__ import annotations

from django.db import models

SINGLETON = 1


class RateCounter(models.Model):
    key = models.CharField(primary_key=True, max_length=300)
    window_start = models.BigIntegerField()  # Unix seconds, a multiple of the window
    count = models.IntegerField()

    class Meta:
        db_table = "ratelimit_counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class RateLimitSetting(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    limits = models.JSONField()  # {scope: {"per_user": n, "per_ip": n, "window_seconds": n}}
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_rate_limits"

    def __str__(self) -> str:
        return "rate limits"
