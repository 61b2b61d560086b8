"""A Celery worker that stopped consuming while tasks wait for it stops, so its supervisor
starts it again (docker compose's ``restart: unless-stopped``, systemd's ``Restart=``).

Celery's Redis consumer can lose the broker connection, log "Connection to broker lost.
Trying to re-establish the connection...", and then receive nothing more, the process alive
and idle, until it is restarted (upstream celery#8030, #10205, still reported against
5.6.3 in #10302; seen here in the 300 s fault run, seed 808, after a Redis restart). Nothing
is lost (e-mail rows stay pending in the outbox and the sweep enqueues them again), but no
e-mail goes out until the worker is restarted.

The rule: the worker's queues have held tasks at every check for ``stall`` seconds, this
worker received none in that time and runs or holds none. A busy worker (a slow SMTP server)
holds a task, so it is never taken for a stalled one; a worker whose broker is unreachable
is left to Celery's own reconnection (the depth cannot be read).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# After the warm shutdown was asked for: a worker still alive then is ended.
EXIT_GRACE = 30.0
EXIT_CODE = 70  # EX_SOFTWARE


class Watchdog:
    """The rule, apart from Celery: ``depth`` reads the tasks waiting in the worker's queues
    (None if the broker does not answer), ``busy`` whether the worker runs or holds one."""

    def __init__(
        self,
        depth: Callable[[], int | None],
        busy: Callable[[], bool],
        *,
        stall: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._depth = depth
        self._busy = busy
        self.stall = stall
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting_since: float | None = None
        self._busy_since: float | None = None
        self.depth: int | None = None

    def received(self) -> None:
        """A task reached the worker: it consumes."""
        with self._lock:
            self._waiting_since = None

    def stalled(self) -> bool:
        """One check: True once tasks have waited ``stall`` seconds with the worker idle."""
        depth = self._depth()
        now = self._clock()
        with self._lock:
            self.depth = depth
            busy = bool(depth) and self._busy()
            if busy and self._busy_since is None:
                self._busy_since = now
            elif not busy:
                self._busy_since = None
            if not depth or busy:
                self._waiting_since = None
                return False
            if self._waiting_since is None:
                self._waiting_since = now
                return False
            return now - self._waiting_since >= self.stall

    def held_up(self) -> bool:
        """Whether tasks have waited ``stall`` seconds while the worker ran or held others (a
        task that takes that long is worth a warning: the hard time limit ends it)."""
        with self._lock:
            if self._busy_since is None or self._clock() - self._busy_since < self.stall:
                return False
            self._busy_since = self._clock()  # once per stall period
            return True


def worker_busy() -> bool:
    """Whether this worker process runs or holds a task (Celery's own bookkeeping, kept in
    the consumer's process)."""
    from celery.worker import state

    return bool(state.active_requests or state.reserved_requests)


def running_tasks(now: float | None = None) -> str:
    """The tasks this worker runs, with how long each has run (for the warning)."""
    from celery.worker import state

    at = time.time() if now is None else now
    return (
        ", ".join(
            f"{r.name} {r.id}"
            + (f" for {at - r.time_start:.0f} s" if getattr(r, "time_start", None) else "")
            for r in list(state.active_requests)
        )
        or "none (tasks held, not started)"
    )


def dump_stacks_on_signal(signum: int = signal.SIGUSR2) -> None:
    """``kill -USR2`` writes every thread's stack to the process's stderr (its log): where a
    worker or one of its pool processes is stuck (Celery's own SIGUSR1 covers only the
    worker's main process)."""
    # The process's own stderr: Celery replaces sys.stderr with a logger, which has no file.
    stderr = sys.__stderr__
    if stderr is not None:
        faulthandler.register(signum, file=stderr, all_threads=True, chain=False)


def stop_worker(reason: str, exit_: Callable[[int], None] = os._exit) -> None:
    """Warm shutdown (the pool's processes end with it), then an exit if that hangs."""
    log.error("%s: stopping this worker so that its supervisor starts it again", reason)
    os.kill(os.getpid(), signal.SIGTERM)
    timer = threading.Timer(EXIT_GRACE, exit_, args=(EXIT_CODE,))
    timer.daemon = True
    timer.start()


def watch(
    watchdog: Watchdog,
    interval: float,
    stop: threading.Event,
    on_stall: Callable[[str], None] = stop_worker,
) -> threading.Thread:
    """The checks, every ``interval`` seconds in a daemon thread, until one finds a stall."""

    def loop() -> None:
        while not stop.wait(interval):
            try:
                stalled = watchdog.stalled()
                if watchdog.held_up():
                    log.warning(
                        "%s task(s) have waited %g s while this worker ran: %s",
                        watchdog.depth, watchdog.stall, running_tasks(),
                    )  # fmt: skip
                if stalled:
                    on_stall(
                        f"{watchdog.depth} task(s) waited {watchdog.stall:g} s in this worker's"
                        " queues and it received none (its consumer stopped after losing the"
                        " broker, celery#10205)"
                    )
                    return
            except Exception:
                log.warning("the worker watchdog's check failed", exc_info=True)

    thread = threading.Thread(target=loop, name="worker-watchdog", daemon=True)
    thread.start()
    return thread
