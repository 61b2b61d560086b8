"""Group commit: many concurrent commands' events appended in one transaction.

The event store serialises appends with a table lock (so the notification log has no gaps),
which caps single-event commits at a few hundred per second. Commands arriving while a
commit is in flight queue up; the committer thread then appends all of them in one
transaction. Each caller still gets its own outcome: if the batch hits a version conflict,
the batch is retried one command at a time so only the conflicting command fails (and is
retried by the application on fresh state). See docs/adr/0004-group-commit.md.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

Batch = list[list[Any]]
Outcome = Any  # list of recordings, or the exception for that command
SaveBatch = Callable[[Batch], list[Outcome]]

_STOP = object()
log = logging.getLogger(__name__)


class _Waiter:
    """One submitted command: its events, and a lock held until its outcome is set.

    A bare lock is the cheapest way to block one thread until another wakes it; a
    ``concurrent.futures.Future`` (a ``Condition``, its own lock and waiter list) cost
    several times as much per command (ADR 0020)."""

    __slots__ = ("done", "events", "outcome")

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.done = threading.Lock()
        self.done.acquire()
        self.outcome: Outcome = None

    def set(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.release()


class _Callback:
    """One command submitted without waiting (``submit_nowait``): ``done`` gets the outcome,
    in the committer's thread."""

    __slots__ = ("done", "events")

    def __init__(self, events: list[Any], done: Callable[[Outcome], object]) -> None:
        self.events = events
        self.done = done

    def set(self, outcome: Outcome) -> None:
        try:
            self.done(outcome)
        except Exception:  # the caller's problem; the rest of the batch still hears theirs
            log.exception("group commit: a command's callback failed")


class GroupCommitter:
    def __init__(self, save_batch: SaveBatch, *, max_batch: int = 128) -> None:
        self._save_batch = save_batch
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.batches = 0
        self.commands = 0

    def submit(self, events: Sequence[Any]) -> Any:
        """Append ``events`` (one command's) and wait for the outcome."""
        self._ensure_started()
        waiter = _Waiter(list(events))
        self._queue.put(waiter)
        waiter.done.acquire()
        if isinstance(waiter.outcome, BaseException):
            raise waiter.outcome
        return waiter.outcome

    def submit_nowait(self, events: Sequence[Any], done: Callable[[Outcome], object]) -> None:
        """Append ``events`` (one command's) in a coming batch, and return at once; ``done``
        is called with the outcome (the recordings, or the exception) from the committer's
        thread. For a caller that must not block, such as an event loop."""
        self._ensure_started()
        self._queue.put(_Callback(list(events), done))

    def stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._started = False

    def _ensure_started(self) -> None:
        if not self._started:
            with self._lock:
                if not self._started:
                    self._thread = threading.Thread(
                        target=self._run, name="group-commit", daemon=True
                    )
                    self._thread.start()
                    self._started = True

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            item = get()
            if item is _STOP:
                return
            items = [item]
            stop = False
            while len(items) < self._max_batch:
                try:
                    nxt = get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                items.append(nxt)
            self._commit(items)
            if stop:
                return

    def _commit(self, items: list[_Waiter | _Callback]) -> None:
        self.batches += 1
        self.commands += len(items)
        try:
            outcomes = self._save_batch([w.events for w in items])
        except BaseException as exc:
            for waiter in items:
                waiter.set(exc)
            return
        for waiter, outcome in zip(items, outcomes, strict=True):
            waiter.set(outcome)
