"""sky.conc.map_async: blocking calls from client threads, results in order."""

from __future__ import annotations

import threading

import pytest

import skyward as sky


@sky.compute
def heavy(x: int, y: int) -> int:
    return x + y


def test_map_async_sends_to_the_active_pool_and_keeps_order() -> None:
    @sky.pool(provider=sky.Local(), nodes=2, concurrency=2)
    def main() -> list[int]:
        return list(sky.conc.map_async(lambda x: heavy(x, x) >> sky, range(40)))

    assert main() == [2 * i for i in range(40)]


def test_map_async_runs_calls_at_the_same_time() -> None:
    # Every call waits for all four, so this finishes only if four run at once.
    barrier = threading.Barrier(4, timeout=30)

    def meet(i: int) -> int:
        barrier.wait()
        return i

    assert list(sky.conc.map_async(meet, range(4), max_workers=4)) == [0, 1, 2, 3]


def test_map_async_defaults_to_one_thread_per_slot_of_the_active_pool() -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def record(i: int) -> int:
        with lock:
            seen.add(threading.current_thread().name)
        return i

    with sky.ComputePool(provider=sky.Local(), nodes=1, concurrency=3):
        assert list(sky.conc.map_async(record, range(30))) == list(range(30))
    assert 1 <= len(seen) <= 3


def test_map_async_reraises_a_failure_at_its_position() -> None:
    def fail_on_five(i: int) -> int:
        if i == 5:
            raise KeyError(i)
        return i

    results = sky.conc.map_async(fail_on_five, range(10), max_workers=2)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(KeyError):
        next(results)


def test_map_async_rejects_fewer_than_one_worker() -> None:
    with pytest.raises(ValueError, match="max_workers must be at least 1, got 0"):
        sky.conc.map_async(abs, [1], max_workers=0)
