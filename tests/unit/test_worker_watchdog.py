"""The worker watchdog's rule (``infra.server.worker_watchdog``): a worker stops only when
tasks have waited ``stall`` seconds while it received none and held none."""

from __future__ import annotations

import threading

from infra.server.worker_watchdog import Watchdog, watch


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tasks_waiting_while_the_worker_idles_for_the_stall_time_is_a_stall():
    clock, depth = Clock(), [3]
    dog = Watchdog(lambda: depth[0], lambda: False, stall=10, clock=clock)
    assert not dog.stalled()  # first seen waiting
    clock.now = 9.9
    assert not dog.stalled()
    clock.now = 10.0
    assert dog.stalled()
    assert dog.depth == 3


def test_a_task_received_an_empty_queue_or_a_busy_worker_starts_the_wait_again():
    clock, depth, busy = Clock(), [2], [False]
    dog = Watchdog(lambda: depth[0], lambda: busy[0], stall=10, clock=clock)
    assert not dog.stalled()
    clock.now = 8
    dog.received()  # the worker consumes: the wait starts again at the next check
    assert not dog.stalled()
    clock.now = 17
    assert not dog.stalled()
    clock.now = 18
    assert dog.stalled()

    dog.received()
    busy[0] = True  # a slow SMTP server: the worker holds its task, the queue waits
    for clock.now in (20, 40, 60):
        assert not dog.stalled()
    busy[0] = False
    depth[0] = 0  # emptied (by another worker)
    clock.now = 70
    assert not dog.stalled()
    depth[0] = 1
    clock.now = 75
    assert not dog.stalled()
    clock.now = 85
    assert dog.stalled()


def test_a_broker_that_does_not_answer_is_left_to_celerys_reconnection():
    clock, depth = Clock(), [5]
    dog = Watchdog(lambda: depth[0], lambda: False, stall=10, clock=clock)
    assert not dog.stalled()
    depth[0] = None  # type: ignore[call-overload]
    for clock.now in (10, 20, 30):
        assert not dog.stalled()
    depth[0] = 5
    clock.now = 31
    assert not dog.stalled()  # waiting counts again from here
    clock.now = 41
    assert dog.stalled()


def test_the_thread_reports_the_stall_once_and_ends():
    clock = Clock()
    dog = Watchdog(lambda: 4, lambda: False, stall=0.0, clock=clock)
    reasons: list[str] = []
    thread = watch(dog, interval=0.01, stop=threading.Event(), on_stall=reasons.append)
    thread.join(5)
    assert not thread.is_alive()
    assert len(reasons) == 1
    assert "4 task(s) waited" in reasons[0]


def test_tasks_waiting_behind_a_long_task_are_reported_once_per_stall_period():
    clock = Clock()
    dog = Watchdog(lambda: 2, lambda: True, stall=10, clock=clock)
    assert not dog.stalled()
    assert not dog.held_up()
    clock.now = 10
    assert not dog.stalled()  # busy: never a stall
    assert dog.held_up()
    clock.now = 15
    assert not dog.held_up()  # said already
    clock.now = 20
    dog.stalled()
    assert dog.held_up()


def test_stacks_are_written_on_sigusr2(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import time\n"
        "from infra.server.worker_watchdog import dump_stacks_on_signal\n"
        "dump_stacks_on_signal()\n"
        "def stuck_here():\n"
        "    print('ready', flush=True)\n"  # the signal then finds this frame on the stack
        "    time.sleep(30)\n"
        "stuck_here()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGUSR2)
        time.sleep(0.5)
    finally:
        proc.kill()
        _, err = proc.communicate(10)
    assert "stuck_here" in err
