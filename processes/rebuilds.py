"""Projector status and rebuilds started from the admin console (the admin's replay).

``Rebuilds.start`` records a ``ProjectionRebuild`` row and rebuilds the projector in a
thread of this process, exactly as ``manage.py projector rebuild NAME`` does (beside the
live tables, then swapped in, under the same feed lease), writing its progress to the row
at most every ``PROGRESS_EVERY`` seconds; the page polls the row. One rebuild per projector
at a time in a process; a second request is refused with 409 while the first runs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from command_api.admin_views import RebuildRunningError
from infra.postgres.models import ProjectionRebuild
from projections.ports import EventSource, RebuildableStore
from projections.runner import Progress, rebuild

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.5  # seconds


@dataclass(frozen=True)
class RebuildPorts:
    names: Callable[[], Sequence[str]]
    event_source: Callable[[], EventSource]
    store: Callable[[str], RebuildableStore]
    batch_size: Callable[[str], int]
    lease: Callable[[str], Any]  # claims the feed lease; returns an object with close()
    status: Callable[[str, int], dict[str, Any]]  # one projector's row, given the log's head


class Rebuilds:
    def __init__(self, ports: RebuildPorts) -> None:
        self._ports = ports
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._ports.names())

    def status(self) -> list[dict[str, Any]]:
        head = self._ports.event_source().head()
        rows = []
        for name in self.names():
            try:
                row = self._ports.status(name, head)
            except Exception as error:  # one unreachable store must not hide the others
                row = {
                    "source": "?",
                    "position": None,
                    "lag": None,
                    "where": f"unavailable: {error}",
                }
            rows.append({"name": name, "head": head, "rebuildable": True, **row})
        return rows

    def start(self, name: str, started_by: str) -> uuid.UUID:
        with self._lock:
            running = self._running.get(name)
            if running is not None and running.is_alive():
                raise RebuildRunningError()
            job = ProjectionRebuild.objects.create(
                id=uuid.uuid4(),
                projector=name,
                started_by=started_by,
                started_at=timezone.now(),
                total=self._ports.event_source().head(),
            )
            thread = threading.Thread(
                target=self._run, args=(job.id, name), name=f"rebuild-{name}", daemon=True
            )
            self._running[name] = thread
            thread.start()
        return job.id

    def wait(self, name: str, timeout: float | None = None) -> None:
        """Until the rebuild of ``name`` started here has ended (tests, shutdown)."""
        thread = self._running.get(name)
        if thread is not None:
            thread.join(timeout)

    def _run(self, job_id: uuid.UUID, name: str) -> None:
        last = 0.0

        def progress(p: Progress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY:
                last = now
                ProjectionRebuild.objects.filter(id=job_id).update(
                    done=p.done, total=max(p.total, p.done), rate=p.rate, position=p.position
                )

        try:
            lease = self._ports.lease(name)
            try:
                live = self._ports.store(name)
                position = rebuild(
                    self._ports.event_source(),
                    live,
                    live.shadow,
                    live.swap_in,
                    batch_size=self._ports.batch_size(name),
                    on_progress=progress,
                )
            finally:
                lease.close()
            job = ProjectionRebuild.objects.get(id=job_id)
            ProjectionRebuild.objects.filter(id=job_id).update(
                state=ProjectionRebuild.State.DONE,
                done=max(job.total, job.done),
                total=max(job.total, job.done),
                position=position,
                finished_at=timezone.now(),
            )
        except Exception as error:
            log.exception("rebuild of %s failed", name)
            ProjectionRebuild.objects.filter(id=job_id).update(
                state=ProjectionRebuild.State.FAILED,
                error=str(error)[:2000] or type(error).__name__,
                finished_at=timezone.now(),
            )
        finally:
            connection.close()
            close_old_connections()
