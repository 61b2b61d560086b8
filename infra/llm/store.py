"""The draft cache and the admin's draft settings, in PostgreSQL.

The cache is keyed by the ticket's content version (its last event that is not about
drafts), the prompt version, the model, the language and whether internal content is
allowed: the same state never costs two calls. Drafts that failed are not cached (the next
request tries again); ready and refused ones are.

Settings: drafts on or off, the model (empty: ``DESKSTREAM_LLM_MODEL``), and the limits per
agent and for everyone in a window of seconds (0: none). Each process rereads them at most
every ``RELOAD_SECONDS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import IntegrityError

from infra.llm.models import SINGLETON, DraftCacheEntry, DraftSettingsRow

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "model": "",
    "per_agent": 20,  # drafts per agent per window
    "global": 300,  # drafts for everyone per window
    "window_seconds": 60,
}
MODEL_MAX = 200
RELOAD_SECONDS = 5.0
_loaded: tuple[float, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Cached:
    outcome: str
    text: str
    reason: str
    source: str
    model: str
    prompt_hash: str
    prompt_tokens: int
    completion_tokens: int


def cache_key(
    ticket_id: UUID,
    content_version: int,
    prompt_version: str,
    model: str,
    language: str,
    allow_internal: bool,
) -> str:
    raw = f"{ticket_id}|{content_version}|{prompt_version}|{model}|{language}|{allow_internal}"
    return hashlib.sha256(raw.encode()).hexdigest()


def cache_get(key: str) -> Cached | None:
    row = DraftCacheEntry.objects.filter(key=key).first()
    if row is None:
        return None
    return Cached(
        row.outcome,
        row.text,
        row.reason,
        row.source,
        row.model,
        row.prompt_hash,
        row.prompt_tokens,
        row.completion_tokens,
    )


def cache_put(key: str, entry: Cached) -> None:
    # Another worker may store the same state first: theirs stays.
    with contextlib.suppress(IntegrityError):
        DraftCacheEntry.objects.get_or_create(
            key=key,
            defaults={
                "outcome": entry.outcome,
                "text": entry.text,
                "reason": entry.reason,
                "source": entry.source,
                "model": entry.model,
                "prompt_hash": entry.prompt_hash,
                "prompt_tokens": entry.prompt_tokens,
                "completion_tokens": entry.completion_tokens,
            },
        )


# ------------------------------------------------------------------------------ settings
def present() -> dict[str, Any]:
    row = DraftSettingsRow.objects.filter(id=SINGLETON).first()
    return {**DEFAULTS, **(row.settings if row else {})}


def parse(data: object) -> dict[str, Any]:
    """Every field, of its type; a map of field -> errors (empty: valid) and the settings."""
    if not isinstance(data, Mapping):
        raise ValueError({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    for name in set(data) - set(DEFAULTS):
        errors[str(name)] = ["Unknown field."]
    for name in set(DEFAULTS) - set(data):
        errors[name] = ["This field is required."]
    if not isinstance(data.get("enabled", True), bool):
        errors["enabled"] = ["Expected true or false."]
    model = data.get("model", "")
    if not isinstance(model, str) or len(model) > MODEL_MAX or model != model.strip():
        errors["model"] = [f"A model name of at most {MODEL_MAX} characters, or empty."]
    for name, lowest in (("per_agent", 0), ("global", 0), ("window_seconds", 1)):
        value = data.get(name, lowest)
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= 10**6:
            errors[name] = [f"Expected a whole number from {lowest} to 1000000."]
    if errors:
        raise ValueError(errors)
    return {name: data[name] for name in DEFAULTS}


def store(values: dict[str, Any], by: str) -> None:
    global _loaded
    DraftSettingsRow.objects.update_or_create(
        id=SINGLETON, defaults={"settings": values, "updated_by": by}
    )
    _loaded = None


def current() -> dict[str, Any]:
    global _loaded
    now = time.monotonic()
    if _loaded is None or now - _loaded[0] > RELOAD_SECONDS:
        _loaded = (now, present())
    return _loaded[1]
