"""A pool's events, in order, from a real Local pool with a recording callback."""

from __future__ import annotations

import shutil
import sys

import pytest
from events_helpers import FailingLocal, Recorder

import skyward as sky
from skyward.cluster.cluster import STEP_CONNECT, STEP_RUNTIME, STEP_WORKERS

INTERVAL = 0.25


@sky.compute
def shout(i: int) -> int:
    node = sky.instance_info().node
    print(f"task {i} on node {node}")
    print(f"task {i} warning from node {node}", file=sys.stderr)
    return i * i


@sky.compute
def fail(i: int) -> int:
    raise ValueError(f"task {i} refuses")


def index_of(recorder: Recorder, kind: type) -> list[int]:
    return [i for i, e in enumerate(recorder.events) if isinstance(e, kind)]


@pytest.fixture(scope="module")
def run() -> Recorder:
    """Open a 2-node pool, run tasks, wait for metrics, close it."""
    recorder = Recorder()
    with sky.ComputePool(
        nodes=2, console=False, on_event=recorder, metrics_interval=INTERVAL
    ) as pool:
        assert sky.gather(*(shout(i) for i in range(6))) >> pool == (
            0,
            1,
            4,
            9,
            16,
            25,
        )
        assert shout(100) @ pool == (10000, 10000)
        with pytest.raises(ValueError, match="task 7 refuses"):
            fail(7) >> pool
        recorder.wait_for(
            lambda r: all(
                len([m for m in r.of(sky.Metrics) if m.node == n]) >= 3 for n in (0, 1)
            )
        )
    return recorder


def test_lifecycle_events_come_in_order(run: Recorder) -> None:
    names = run.names()
    assert names[0] == "ProvisioningStarted"
    assert names[-2:] == ["PoolStopped", "CostFinal"]
    assert names.count("CostFinal") == 1
    assert names.count("PoolReady") == 1

    provisioned = index_of(run, sky.InstanceProvisioned)
    bootstrap = index_of(run, sky.BootstrapProgress)
    ready = names.index("PoolReady")
    calls = index_of(run, sky.FunctionCall)
    assert sorted(e.node for e in run.of(sky.InstanceProvisioned)) == [0, 1]
    assert max(provisioned) < min(bootstrap)
    assert max(bootstrap) < ready < min(calls)
    assert run.of(sky.PoolReady)[0].nodes == 2
    started = run.of(sky.ProvisioningStarted)[0]
    assert (started.provider, started.nodes) == ("local", 2)
    assert run.of(sky.PoolStopped)[0].error is None


def test_each_node_reports_its_bootstrap_steps(run: Recorder) -> None:
    for node in (0, 1):
        steps = [
            (e.step, e.status) for e in run.of(sky.BootstrapProgress) if e.node == node
        ]
        assert steps == [
            (STEP_CONNECT, "started"),
            (STEP_CONNECT, "done"),
            (STEP_RUNTIME, "started"),
            (STEP_RUNTIME, "done"),
            (STEP_WORKERS, "started"),
            (STEP_WORKERS, "done"),
        ]


def test_every_task_reports_its_result(run: Recorder) -> None:
    calls = run.of(sky.FunctionCall)
    results = run.of(sky.FunctionResult)
    assert len(calls) == len(results) == 6 + 2 + 1
    assert {c.task_id for c in calls} == {r.task_id for r in results}
    by_id = {r.task_id: r for r in results}
    for call in calls:
        result = by_id[call.task_id]
        assert run.events.index(call) < run.events.index(result)
        assert (result.node, result.slot) == (call.node, call.slot)
        assert result.duration_ms >= 0
    ok = [r for r in results if r.ok]
    assert sorted(r.function_name for r in ok) == ["shout"] * 8
    assert all(r.error is None for r in ok)
    (failed,) = [r for r in results if not r.ok]
    assert failed.function_name == "fail"
    assert failed.error == "ValueError: task 7 refuses"
    # The broadcast ran once on each node.
    broadcast_nodes = sorted(
        r.node for r in ok if any(c.task_id == r.task_id for c in calls[6:8])
    )
    assert broadcast_nodes == [0, 1]


def test_log_lines_carry_task_prints_with_their_node(run: Recorder) -> None:
    lines = run.of(sky.LogLine)
    out = [e for e in lines if e.stream == "stdout"]
    err = [e for e in lines if e.stream == "stderr"]
    assert sorted(int(e.line.split()[1]) for e in out) == [0, 1, 2, 3, 4, 5, 100, 100]
    assert len(err) == len(out)
    for event in lines:
        assert event.line.endswith(f"node {event.node}")
        assert event.slot == 0
    assert sorted(e.node for e in out if e.line.startswith("task 100 ")) == [0, 1]
    # A task's prints arrive before its result.
    results = index_of(run, sky.FunctionResult)
    last_line = max(index_of(run, sky.LogLine))
    assert last_line < max(results)


def test_metrics_arrive_from_every_node_at_the_interval(run: Recorder) -> None:
    ready = run.names().index("PoolReady")
    stopped = run.names().index("PoolStopped")
    for node in (0, 1):
        samples = [m for m in run.of(sky.Metrics) if m.node == node]
        assert len(samples) >= 3
        for m in samples:
            assert ready < run.events.index(m) < stopped
            assert 0.0 <= m.cpu_percent <= 100.0
            assert 0.0 < m.memory_percent <= 100.0
            if shutil.which("nvidia-smi") is None:
                assert m.gpu_utilization is None
                assert m.gpu_memory_percent is None
        # Stamped on the node when sampled: the sampler waits the interval
        # between samples however the events travel.
        span = samples[-1].timestamp - samples[0].timestamp
        assert span / (len(samples) - 1) >= INTERVAL * 0.8


def test_a_pool_with_only_the_plain_console_skips_task_events() -> None:
    with sky.ComputePool(console=None) as pool:
        assert pool._cluster is not None
        assert pool._cluster.watch_tasks is False
        assert pool._cluster._metrics == []
    recorder = Recorder()
    with sky.ComputePool(console=False, on_event=recorder) as pool:
        assert pool._cluster is not None
        assert pool._cluster.watch_tasks is True
        assert len(pool._cluster._metrics) == 1


def test_a_pool_that_fails_to_open_still_ends_with_cost_final(
    recorder: Recorder,
) -> None:
    provider = FailingLocal()
    with pytest.raises(sky.errors.ProvisioningError, match="refuses to finish"):
        with sky.ComputePool(provider=provider, console=False, on_event=recorder):
            pass
    names = recorder.names()
    assert names == [
        "ProvisioningStarted",
        "InstanceProvisioned",
        "PoolStopped",
        "CostFinal",
    ]
    assert "ProvisioningError" in (recorder.of(sky.PoolStopped)[0].error or "")


@sky.compute
def die() -> None:
    import os

    os._exit(3)


def test_a_task_whose_worker_dies_still_reports_a_failed_result(
    recorder: Recorder,
) -> None:
    with sky.ComputePool(console=False, on_event=recorder, metrics_interval=None) as p:
        with pytest.raises(sky.errors.WorkerDiedError):
            die() >> p
    (call,) = recorder.of(sky.FunctionCall)
    (result,) = recorder.of(sky.FunctionResult)
    assert result.task_id == call.task_id
    assert (result.function_name, result.ok) == ("die", False)
    assert result.error is not None and result.error.startswith("WorkerDiedError")
