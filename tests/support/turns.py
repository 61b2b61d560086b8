"""An aggregate's turn held by another thread, as a command on Django's path holds it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from command_api.application import Turns


@contextmanager
def turn_held_by_a_thread(turns: Turns, aggregate_id: UUID) -> Iterator[threading.Event]:
    """Hold the turn in a thread until the yielded event is set (at the latest on exit)."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turns.turn(aggregate_id):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    try:
        yield release
    finally:
        release.set()
        thread.join(5)
