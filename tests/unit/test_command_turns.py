"""Turns (one command at a time per aggregate) and the group committer's two ways in."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

from command_api.application import Turns
from command_api.group_commit import GroupCommitter


def test_try_take_refuses_a_turn_that_is_held_or_awaited_and_give_back_frees_it():
    turns = Turns()
    a, b = uuid4(), uuid4()
    turn = turns.try_take(a)
    assert turn is not None
    assert turns.try_take(a) is None
    assert turns.try_take(b) is not None  # other aggregates never wait
    entered = threading.Event()

    def blocking() -> None:
        with turns.turn(a):
            entered.set()

    waiter = threading.Thread(target=blocking)
    waiter.start()
    assert not entered.wait(0.2)  # the blocking way waits for the turn taken without waiting
    turns.give_back(a, turn)  # from another thread than the waiter's: a plain lock
    assert entered.wait(5)
    waiter.join(5)
    assert turns.try_take(a) is not None  # nobody in line any more


def test_try_take_refuses_while_a_blocking_command_is_in_line():
    turns = Turns()
    a = uuid4()
    inside, leave = threading.Event(), threading.Event()

    def blocking() -> None:
        with turns.turn(a):
            inside.set()
            leave.wait(5)

    t = threading.Thread(target=blocking)
    t.start()
    assert inside.wait(5)
    assert turns.try_take(a) is None
    leave.set()
    t.join(5)
    assert turns.try_take(a) is not None


def test_submit_nowait_hands_each_command_its_outcome_in_one_batch_with_waiting_ones():
    batches: list[list[list[str]]] = []
    gate = threading.Event()

    def save(batch: list[list[str]]) -> list[object]:
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
    time.sleep(0.05)  # the committer takes "first" and waits at the gate
    committer.submit_nowait(["bad"], lambda outcome: got.setdefault("bad", outcome))

    def broken(outcome: object) -> None:
        raise RuntimeError("a caller's bug")

    committer.submit_nowait(["x"], broken)
    committer.submit_nowait(["y", "z"], lambda outcome: (got.setdefault("yz", outcome), done.set()))
    waited: list[object] = []
    blocking = threading.Thread(target=lambda: waited.append(committer.submit(["w"])))
    blocking.start()
    time.sleep(0.05)
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
