"""Fault injection for the crash tests: a projector or the relay dies at a chosen point.

``DESKSTREAM_FAULT_CRASH_AFTER=N``: a projector process exits in the middle of a batch, after
handling N events and before that batch commits. ``DESKSTREAM_FAULT_RELAY_CRASH_AFTER=N``:
the relay exits after its Nth publish was acknowledged, before it stores its position.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from infra.postgres.projection_store import PostgresProjectionStore
from projections.ports import Envelope

PROJECTOR_EXIT = 86
RELAY_EXIT = 87


def crash_projector_after(projection: PostgresProjectionStore, after: int) -> None:
    """Wrap the store's handler in place: the process dies after ``after`` events."""
    handled = 0
    inner = projection._handler

    def handler(envelope: Envelope, state: Any) -> None:
        nonlocal handled
        inner(envelope, state)
        handled += 1
        if handled >= after:
            os._exit(PROJECTOR_EXIT)

    projection._handler = handler


def crash_relay_after(batches: int) -> Callable[[int], None]:
    """An ``after_publish`` hook: the relay dies after its ``batches``th acknowledged publish."""
    published = 0

    def hook(_: int) -> None:
        nonlocal published
        published += 1
        if published >= batches:
            os._exit(RELAY_EXIT)

    return hook


def from_env(name: str) -> int | None:
    raw = os.environ.get(name)
    return int(raw) if raw else None
