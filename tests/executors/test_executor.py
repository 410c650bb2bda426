"""sky.Executor follows concurrent.futures' contract, on real Local pools."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from exec_helpers import Gate, blocked, mark

import skyward as sky
from skyward.errors import (
    ConfigurationError,
    NodeLostError,
    PoolBrokenError,
    RemoteTraceback,
    SerializationError,
)


class Unlucky(Exception):
    """Defined here, so it reaches nodes by value and must come back as itself."""


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise Unlucky(f"item {x}")
    return x


@sky.compute
def triple(x: int) -> int:
    return 3 * x


@pytest.fixture(scope="module")
def executor() -> Iterator[sky.Executor]:
    with sky.Executor(provider=sky.Local(), nodes=2, concurrency=2) as ex:
        yield ex


def test_is_a_standard_executor_with_total_slots(executor: sky.Executor) -> None:
    assert isinstance(executor, cf.Executor)
    assert executor.total_slots == 4
    assert executor.compute_pool.is_open


def test_submit_takes_plain_and_compute_functions_and_lambdas(
    executor: sky.Executor,
) -> None:
    futures = [
        executor.submit(square, 7),
        executor.submit(triple, 5),
        executor.submit(lambda a, b=0: a - b, 10, b=3),
        executor.submit(add, x=1, y=2),
    ]
    assert all(isinstance(f, cf.Future) for f in futures)
    assert [f.result(timeout=30) for f in futures] == [49, 15, 7, 3]
    assert triple(2) >> executor == 6  # the executor is also a send target


def test_futures_work_with_as_completed_and_wait(executor: sky.Executor) -> None:
    futures = [executor.submit(square, i) for i in range(12)]
    done = {f.result() for f in cf.as_completed(futures, timeout=30)}
    assert done == {i * i for i in range(12)}
    finished, not_done = cf.wait(futures, timeout=30)
    assert len(finished) == 12 and not not_done


def test_map_is_ordered_like_the_builtin(executor: sky.Executor) -> None:
    assert list(executor.map(square, range(50))) == [i * i for i in range(50)]
    # several iterables stop at the shortest, chunked or not
    for chunksize in (1, 3, 100):
        got = executor.map(add, range(10), range(100, 107), chunksize=chunksize)
        assert list(got) == [i + 100 + i for i in range(7)]
    assert list(executor.map(square, [], chunksize=4)) == []


def test_map_rejects_a_chunksize_below_one(executor: sky.Executor) -> None:
    with pytest.raises(ValueError, match="chunksize must be >= 1"):
        executor.map(square, range(3), chunksize=0)


def test_a_task_exception_keeps_its_type(executor: sky.Executor) -> None:
    future = executor.submit(fail_on, 3, bad=3)
    with pytest.raises(Unlucky, match="item 3") as info:
        future.result(timeout=30)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fail_on" in info.value.__cause__.tb
    assert isinstance(executor.submit(int, "x").exception(timeout=30), ValueError)


def test_map_raises_at_the_failing_position(executor: sky.Executor) -> None:
    for chunksize in (1, 4):
        results = executor.map(fail_on, range(10), [6] * 10, chunksize=chunksize)
        assert [next(results) for _ in range(4)] == [0, 1, 2, 3]
        with pytest.raises(Unlucky, match="item 6"):
            list(results)


def test_an_argument_that_cannot_travel_fails_only_its_future(
    executor: sky.Executor,
) -> None:
    bad = executor.submit(square, threading.Lock())
    good = executor.submit(square, 4)
    error = bad.exception(timeout=30)
    assert isinstance(error, SerializationError)
    assert "'x'" in str(error) and "square" in str(error)
    assert good.result(timeout=30) == 16


def test_result_timeout_raises_timeout_error(
    executor: sky.Executor, gate: Gate
) -> None:
    future = executor.submit(blocked, gate.path, str(gate.root), "slow")
    with pytest.raises(cf.TimeoutError):
        future.result(timeout=0.2)
    gate.open()
    assert future.result(timeout=30) in (0, 1)


@pytest.fixture
def one_slot() -> Iterator[sky.Executor]:
    """A fresh one-slot executor: it has run nothing, so it pipelines little."""
    with sky.Executor(provider=sky.Local(), nodes=1, concurrency=1) as ex:
        yield ex


def test_map_timeout_raises_and_cancels_what_has_not_started(
    one_slot: sky.Executor, gate: Gate
) -> None:
    root = str(gate.root)
    results = one_slot.map(blocked, [gate.path] * 6, [root] * 6, range(6), timeout=0.5)
    with pytest.raises(cf.TimeoutError):
        next(results)
    started = gate.markers("")
    gate.open()
    # Whatever had reached the slot finishes; the rest was cancelled.
    assert list(one_slot.map(square, range(4))) == [0, 1, 4, 9]
    ran = gate.markers("") - {"gate"}
    assert started <= ran
    assert 1 <= len(ran) < 6


def test_cancelled_before_start_never_runs(one_slot: sky.Executor, gate: Gate) -> None:
    root = str(gate.root)
    holder = one_slot.submit(blocked, gate.path, root, "hold")
    gate.wait_markers("hold", 1)
    waiting = [one_slot.submit(mark, root, f"late{i}") for i in range(10)]
    cancelled = [f for f in waiting if f.cancel()]
    assert cancelled, "the slot is busy, so calls must still be queued"
    assert all(f.cancelled() and f.done() for f in cancelled)
    gate.open()
    assert holder.result(timeout=30) == 0
    ran = {f.result(timeout=30) for f in waiting if not f.cancelled()}
    assert list(one_slot.map(square, range(4))) == [0, 1, 4, 9]  # drained
    assert gate.markers("late") == ran
    with pytest.raises(cf.CancelledError):
        cancelled[0].result()


def test_bad_pool_arguments_fail_before_anything_starts() -> None:
    with pytest.raises(ConfigurationError, match="nodes"):
        sky.Executor(provider=sky.Local(), nodes=0)


def test_shutdown_cancels_pending_waits_for_running_then_refuses_work(
    gate: Gate, leaks
) -> None:
    root = str(gate.root)
    ex = sky.Executor(provider=sky.Local(), nodes=1, concurrency=2)
    running = [ex.submit(blocked, gate.path, root, f"run{i}") for i in range(2)]
    leaks.record(ex.compute_pool)  # opened by the first submit
    gate.wait_markers("run", 2)
    queued = [ex.submit(mark, root, f"queued{i}") for i in range(10)]
    ex.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after"):
        ex.submit(square, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.map(square, range(2))
    assert ex.compute_pool.is_open  # running calls still finish
    gate.open()
    ex.shutdown(wait=True)
    assert [f.result() for f in running] == [0, 0]
    cancelled = [f for f in queued if f.cancelled()]
    assert cancelled
    assert len(gate.markers("queued")) == len(queued) - len(cancelled)
    assert not ex.compute_pool.is_open
    leaks.assert_gone()


def test_submit_after_the_with_block_raises_runtime_error(leaks) -> None:
    with sky.Executor(provider=sky.Local(), nodes=1) as ex:
        leaks.record(ex.compute_pool)
        assert ex.submit(square, 3).result(timeout=30) == 9
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 3)
    leaks.assert_gone()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def kill_node(pool: sky.ComputePool, node: int) -> None:
    os.kill(pool._provisioner.pids[node], signal.SIGKILL)  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_lost_node_fails_only_its_futures_and_a_lost_pool_is_broken(
    gate: Gate, leaks
) -> None:
    root = str(gate.root)
    with sky.Executor(provider=sky.Local(), nodes=2, concurrency=2) as ex:
        pool = ex.compute_pool
        leaks.record(pool)
        futures = [ex.submit(blocked, gate.path, root, f"t{i}") for i in range(4)]
        markers = gate.wait_markers("t", 4)
        on_node = {int(m.split("-")[0][1:]): int(m[-1]) for m in markers}
        assert sorted(on_node.values()) == [0, 0, 1, 1]  # one call per slot

        kill_node(pool, 1)
        for i, future in enumerate(futures):
            if on_node[i] == 1:
                error = future.exception(timeout=30)
                assert isinstance(error, NodeLostError)
                assert error.node == 1 and "Node 1" in str(error)
        gate.open()
        for i, future in enumerate(futures):
            if on_node[i] == 0:
                assert future.result(timeout=30) == 0

        # The pool goes on with the node it has left.
        assert list(ex.map(square, range(20), chunksize=3)) == [
            i * i for i in range(20)
        ]
        assert not pool.is_broken

        second_gate = str(gate.root / "second-gate")
        last = ex.submit(blocked, second_gate, root, "last")
        gate.wait_markers("last", 1)
        kill_node(pool, 0)
        error = last.exception(timeout=30)
        assert isinstance(error, NodeLostError) and error.node == 0
        wait_for(lambda: pool.is_broken)
        with pytest.raises(cf.BrokenExecutor, match="Every node"):
            ex.submit(square, 1)
        with pytest.raises(PoolBrokenError):
            ex.map(square, range(3))
    leaks.assert_gone()


@pytest.mark.slow
def test_a_node_lost_mid_map_raises_an_error_naming_it(gate: Gate, leaks) -> None:
    root = str(gate.root)
    with sky.Executor(provider=sky.Local(), nodes=2, concurrency=1) as ex:
        leaks.record(ex.compute_pool)
        results = ex.map(blocked, [gate.path] * 2, [root] * 2, ["a", "b"])
        markers = gate.wait_markers("", 2)
        assert {m[-1] for m in markers} == {"0", "1"}
        kill_node(ex.compute_pool, 1)
        gate.open()
        with pytest.raises(NodeLostError, match="Node 1 was lost") as info:
            list(results)
        assert info.value.node == 1
    leaks.assert_gone()


def test_without_with_the_first_submit_opens_and_shutdown_closes(leaks) -> None:
    ex = sky.Executor(provider=sky.Local(), nodes=1, concurrency=2)
    assert not ex.compute_pool.is_open
    assert ex.submit(square, 5).result(timeout=30) == 25
    leaks.record(ex.compute_pool)
    ex.shutdown()
    ex.shutdown()  # idempotent, as in the standard library
    assert not ex.compute_pool.is_open
    leaks.assert_gone()
