"""The relay's one row per topic: the last log position the broker acknowledged."""

from __future__ import annotations

from django.db import models


class RelayPosition(models.Model):
    topic = models.CharField(primary_key=True, max_length=200)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "kafka_relay_position"

    def __str__(self) -> str:
        return f"{self.topic}@{self.position}"
