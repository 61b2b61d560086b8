"""Turns (one command at a time per aggregate) and the group committer's two ways in."""

from __future__ import annotations

import asyncio
import threading
from uuid import UUID, uuid4

from command_api.application import Turns
from command_api.group_commit import GroupCommitter
from tests.support.turns import turn_held_by_a_thread
from tests.support.wait import wait_until


def test_threads_and_coroutines_get_the_turn_in_the_order_they_asked():
    turns = Turns()
    a, b = uuid4(), uuid4()
    order: list[str] = []

    async def main() -> None:
        await turns.take(a)  # free: ours at once
        await turns.take(b)  # other aggregates never wait
        turns.give_back(b)
        threads = []
        coroutines = []
        for i in range(3):
            # alternately a thread (blocking) and a coroutine (on this loop) join the line
            t = threading.Thread(target=lambda i=i: _blocking(turns, a, order, f"thread{i}"))
            t.start()
            threads.append(t)
            await _until_in_line(turns, a, 2 * i + 1)
            coroutines.append(asyncio.ensure_future(_waiting(turns, a, order, f"task{i}")))
            await _until_in_line(turns, a, 2 * i + 2)
        assert order == []  # all wait while the turn is held
        turns.give_back(a)  # from this thread; the line moves on by itself
        await asyncio.gather(*coroutines)
        for t in threads:
            await asyncio.to_thread(t.join, 5)

    asyncio.run(main())
    assert order == ["thread0", "task0", "thread1", "task1", "thread2", "task2"]
    assert a not in turns._lines
    assert b not in turns._lines


def test_a_coroutine_cancelled_in_line_gives_up_its_place():
    turns = Turns()
    a = uuid4()
    order: list[str] = []

    async def main() -> None:
        await turns.take(a)
        leaving = asyncio.ensure_future(_waiting(turns, a, order, "leaving"))
        await _until_in_line(turns, a, 1)
        staying = asyncio.ensure_future(_waiting(turns, a, order, "staying"))
        await _until_in_line(turns, a, 2)
        leaving.cancel()
        await asyncio.sleep(0)
        turns.give_back(a)
        await staying
        assert leaving.cancelled()

    asyncio.run(main())
    assert order == ["staying"]
    assert a not in turns._lines


def test_a_turn_passed_to_a_closed_loop_goes_on_to_the_next():
    turns = Turns()
    a = uuid4()

    async def join_then_leave() -> None:
        in_line = asyncio.ensure_future(turns.take(a))
        await _until_in_line(turns, a, 1)
        assert not in_line.done()

    with turn_held_by_a_thread(turns, a):
        asyncio.run(join_then_leave())  # the loop closes with its coroutine still in line
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: _blocking(turns, a, [], "next", entered))
    waiter.start()
    assert entered.wait(5)  # the closed loop's place was passed on, not kept forever
    waiter.join(5)
    assert a not in turns._lines


def _blocking(
    turns: Turns, a: UUID, order: list[str], name: str, entered: threading.Event | None = None
) -> None:
    with turns.turn(a):
        order.append(name)
        if entered is not None:
            entered.set()


async def _waiting(turns: Turns, a: UUID, order: list[str], name: str) -> None:
    await turns.take(a)
    order.append(name)
    turns.give_back(a)


async def _until_in_line(turns: Turns, a: UUID, n: int) -> None:
    for _ in range(500):
        if len(turns._lines.get(a, ())) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not {n} in line")


def test_submit_nowait_hands_each_command_its_outcome_in_one_batch_with_waiting_ones():
    batches: list[list[list[str]]] = []
    gate, saving = threading.Event(), threading.Event()

    def save(batch: list[list[str]]) -> list[object]:
        saving.set()
        gate.wait(5)
        batches.append(batch)
        return [
            ValueError(events[0]) if events[0] == "bad" else [e.upper() for e in events]
            for events in batch
        ]

    committer = GroupCommitter(save)
    got: dict[str, object] = {}
    done = threading.Event()
    committer.submit_nowait(["first"], lambda outcome: got.setdefault("first", outcome))
    assert saving.wait(5)  # the committer took "first" and waits at the gate
    committer.submit_nowait(["bad"], lambda outcome: got.setdefault("bad", outcome))

    def broken(outcome: object) -> None:
        raise RuntimeError("a caller's bug")

    committer.submit_nowait(["x"], broken)
    committer.submit_nowait(["y", "z"], lambda outcome: (got.setdefault("yz", outcome), done.set()))
    waited: list[object] = []
    blocking = threading.Thread(target=lambda: waited.append(committer.submit(["w"])))
    blocking.start()
    wait_until(lambda: committer._queue.qsize() == 4)  # "w" queued behind the other three
    gate.set()
    assert done.wait(5)
    blocking.join(5)
    committer.stop()
    assert got["first"] == ["FIRST"]
    assert isinstance(got["bad"], ValueError)  # only that command failed
    assert got["yz"] == ["Y", "Z"]  # after a callback that raised
    assert waited == [["W"]]
    assert batches[0] == [["first"]]
    assert batches[1] == [["bad"], ["x"], ["y", "z"], ["w"]]  # queued while a commit ran
