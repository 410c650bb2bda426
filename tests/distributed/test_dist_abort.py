"""A broadcast stands or falls as one: a failing part aborts the others."""

from __future__ import annotations

import os
import time

import pytest

import skyward as sky
from skyward.cluster.loop import run as run_in_loop
from skyward.cluster.task import Task
from skyward.errors import TaskAbortedError


@sky.compute
def wait_or_fail(seconds: float) -> int:
    node = sky.instance_info().node
    if node == 1:
        raise KeyError("node 1 failed")
    time.sleep(seconds)  # stands in for a collective waiting on node 1
    return node


@sky.compute
def worker_pid() -> int:
    return os.getpid()


@pytest.mark.timeout(60)
def test_the_failing_node_error_comes_back_and_the_waiting_one_is_stopped(pool):
    before = worker_pid() @ pool
    with pytest.raises(KeyError, match="node 1 failed"):
        wait_or_fail(3600) @ pool
    after = worker_pid() @ pool
    assert after[0] != before[0]  # killed and restarted
    assert after[1] == before[1]  # the failing node's worker raised normally


@pytest.mark.timeout(90)
def test_aborts_do_not_use_up_the_worker_restarts(pool):
    # more aborts than the cluster's crash-restart allowance
    for _ in range(5):
        with pytest.raises(KeyError):
            wait_or_fail(3600) @ pool
    assert sky.gather(*(worker_pid() for _ in range(4))) >> pool


@pytest.mark.timeout(60)
def test_abort_fails_the_task_with_the_reason(pool):
    cluster = pool._cluster
    assert cluster is not None
    task = Task.create(time.sleep, (3600,), {}, node=0)
    future = pool.submit_tasks([task])[0]
    deadline = time.monotonic() + 10
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.01)

    async def abort() -> None:
        cluster.abort([task], "the test asked")

    run_in_loop(abort())
    with pytest.raises(TaskAbortedError, match="node 0 was stopped: the test asked"):
        future.result(timeout=30)
