"""Waiting in tests for something another thread or server does: poll until it is so, with a
deadline, instead of sleeping a guessed time and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, *, interval: float = 0.005
) -> None:
    """Return as soon as ``predicate()`` is true; fail the test if it is not within
    ``timeout`` seconds (it is asked once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            if predicate():
                return
            raise AssertionError(f"not true within {timeout} s: {_name(predicate)}")
        time.sleep(interval)


def _name(predicate: Callable[[], object]) -> str:
    return getattr(predicate, "__qualname__", repr(predicate))
