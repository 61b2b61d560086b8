"""Group commit: many concurrent commands' events appended in one transaction.

The event store serialises appends with a table lock (so the notification log has no gaps),
which caps single-event commits at a few hundred per second. Commands arriving while a
commit is in flight queue up; the committer thread then appends all of them in one
transaction. Each caller still gets its own outcome: if the batch hits a version conflict,
the batch is retried one command at a time so only the conflicting command fails (and is
retried by the application on fresh state). See docs/adr/0004-group-commit.md.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

Batch = list[list[Any]]
Outcome = Any  # list of recordings, or the exception for that command
SaveBatch = Callable[[Batch], list[Outcome]]

_STOP = object()


class GroupCommitter:
    def __init__(self, save_batch: SaveBatch, *, max_batch: int = 128) -> None:
        self._save_batch = save_batch
        self._max_batch = max_batch
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.batches = 0
        self.commands = 0

    def submit(self, events: Sequence[Any]) -> Any:
        """Append ``events`` (one command's) and wait for the outcome."""
        self._ensure_started()
        future: Future[Any] = Future()
        self._queue.put((list(events), future))
        return future.result()

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
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            items = [item]
            stop = False
            while len(items) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                items.append(nxt)
            self._commit(items)
            if stop:
                return

    def _commit(self, items: list[tuple[list[Any], Future[Any]]]) -> None:
        self.batches += 1
        self.commands += len(items)
        try:
            outcomes = self._save_batch([events for events, _ in items])
        except BaseException as exc:
            for _, future in items:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
