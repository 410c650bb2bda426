"""JoblibPool and ScikitLearnPool: joblib's Parallel and scikit-learn on a pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from exec_helpers import Gate
from joblib import Parallel, delayed

import skyward as sky
from skyward.events import FunctionCall, SkywardEvent
from skyward.integrations.joblib import SkywardBackend


class Recorder:
    def __init__(self) -> None:
        self.calls: list[FunctionCall] = []

    def __call__(self, event: SkywardEvent) -> None:
        if isinstance(event, FunctionCall):
            self.calls.append(event)


class Oops(Exception):
    pass


def where(i: int) -> tuple[int, int]:
    return i, sky.instance_info().node


def explode(i: int) -> int:
    if i == 13:
        raise Oops(f"batch item {i}")
    return i


def overlap(gate_dir: str, i: int, need: int, patience: float) -> int:
    """Count how many calls are inside at once, waiting for ``need`` of them."""
    import time

    me = Path(gate_dir, f"in-{i}")
    me.touch()
    deadline = time.monotonic() + patience
    seen = 0
    while time.monotonic() < deadline:
        seen = max(seen, len(list(Path(gate_dir).glob("in-*"))))
        if seen >= need:
            break
        time.sleep(0.01)
    time.sleep(0.2)
    me.unlink()
    return seen


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def joblib_pool(recorder: Recorder) -> Iterator[sky.ComputePool]:
    with sky.integrations.JoblibPool(
        provider=sky.Local(), nodes=2, concurrency=2, on_event=recorder
    ) as pool:
        yield pool


def test_the_pool_is_the_active_backend_inside_the_block(
    joblib_pool: sky.ComputePool,
) -> None:
    backend, _ = joblib.parallel.get_active_backend()
    assert isinstance(backend, SkywardBackend) and backend.pool is joblib_pool
    assert isinstance(joblib_pool, sky.ComputePool)


def test_parallel_runs_on_every_node_of_the_pool(joblib_pool: sky.ComputePool) -> None:
    results = Parallel(n_jobs=-1)(delayed(where)(i) for i in range(16))
    assert [i for i, _ in results] == list(range(16))
    assert {node for _, node in results} == {0, 1}


def test_n_jobs_minus_one_uses_every_slot_at_once(
    joblib_pool: sky.ComputePool, gate: Gate
) -> None:
    seen = Parallel(n_jobs=-1, batch_size=1)(
        delayed(overlap)(str(gate.root), i, 4, 30) for i in range(4)
    )
    assert max(seen) == 4


def test_a_positive_n_jobs_caps_how_many_run_at_once(
    joblib_pool: sky.ComputePool, gate: Gate
) -> None:
    # Each call looks for a third one inside for a second; none may appear.
    seen = Parallel(n_jobs=2, batch_size=1)(
        delayed(overlap)(str(gate.root), i, 3, 1.0) for i in range(4)
    )
    assert max(seen) == 2


def test_tiny_calls_are_batched_not_sent_one_by_one(
    joblib_pool: sky.ComputePool, recorder: Recorder
) -> None:
    before = len(recorder.calls)
    results = Parallel(n_jobs=-1)(delayed(abs)(-i) for i in range(3000))
    assert results == list(range(3000))
    round_trips = len(recorder.calls) - before
    assert 0 < round_trips <= 300, round_trips


def test_n_jobs_zero_is_refused_as_joblib_refuses_it(
    joblib_pool: sky.ComputePool,
) -> None:
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        Parallel(n_jobs=0)(delayed(abs)(i) for i in range(3))


def test_a_failing_call_raises_its_own_exception(joblib_pool: sky.ComputePool) -> None:
    with pytest.raises(Oops, match="batch item 13"):
        Parallel(n_jobs=-1)(delayed(explode)(i) for i in range(40))
    # The backend is usable after an abort.
    assert Parallel(n_jobs=-1)(delayed(abs)(-i) for i in range(5)) == [0, 1, 2, 3, 4]
