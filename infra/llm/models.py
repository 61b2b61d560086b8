"""Tables of AI drafts: the cache of drafts by ticket state, prompt version and model, and the
admin's draft settings (one row; absent means the defaults)."""

from __future__ import annotations

from django.db import models

SINGLETON = 1


class DraftCacheEntry(models.Model):
    # sha256 of (ticket id, ticket content version, prompt version, model, language, options)
    key = models.CharField(primary_key=True, max_length=64)
    outcome = models.CharField(max_length=16)  # ready | refused
    text = models.TextField(blank=True, default="")
    reason = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16)
    model = models.CharField(max_length=200)
    prompt_hash = models.CharField(max_length=128)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "drafts_cache"

    def __str__(self) -> str:
        return self.key


class DraftSettingsRow(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    settings = models.JSONField()  # see infra.llm.settings.DEFAULTS
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "settings_drafts"

    def __str__(self) -> str:
        return "draft settings"
