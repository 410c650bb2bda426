"""The guide's executor, joblib and MultiPool examples run and print as it says."""

from __future__ import annotations

import ast
import os
import re

import pytest

from tests.conftest import run_example as shared_run_example


def run_example(name: str, **env: str) -> list[str]:
    env = {**os.environ, "SKYWARD_SLEEP": "0.1", **env}
    return shared_run_example(name, env).splitlines()


def task_lines(lines: list[str]) -> dict[int, int]:
    """``[node N] Task X starting`` lines as {task: node}."""
    found = {}
    for line in lines:
        match = re.fullmatch(r"\[node (\d)\] Task (\d+) starting", line)
        if match:
            found[int(match[2])] = int(match[1])
    return found


def test_13_multi_pool_compares_two_pools() -> None:
    pytest.importorskip("jax", reason="example 13 runs jax inside its tasks")
    (line,) = run_example("13_multi_pool.py")
    assert re.fullmatch(r"T4: \d+\.\d\ds \| L4: \d+\.\d\ds \| Speedup: \d+\.\dx", line)


@pytest.mark.slow
def test_14_grid_search_finds_the_best_estimator() -> None:
    best, score = run_example("14_distributed_scikit_grid_search.py")
    assert best == "Best: SVC"
    match = re.fullmatch(r"Test score: (\d+\.\d\d)%", score)
    assert match and float(match[1]) > 95


def test_16_joblib_runs_every_task_on_the_pool() -> None:
    lines = run_example("16_joblib_concurrency.py")
    assert lines[-1] == str([2 * i for i in range(20)])
    tasks = task_lines(lines)
    assert sorted(tasks) == list(range(20))
    assert set(tasks.values()) == {0, 1}


def test_17_executor_submit_as_completed_and_map() -> None:
    lines = run_example("17_executor.py")
    results = sorted(int(x.split()[-1]) for x in lines if x.startswith("Result"))
    assert results == [0, 2, 4, 6]
    assert lines[-1] == "Mapped: [8, 10, 12, 14]"
    assert sorted(task_lines(lines)) == list(range(8))


def test_18_multipool_pipeline_runs_each_stage_on_its_pool() -> None:
    assert run_example("18_multipool.py") == [
        "Processed on preprocess: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]",
        "Trained on train: {'loss': 0.0, 'weight': 3.0, 'bias': 1.0}",
        "Evaluated on eval: {'test_accuracy': 1.0}",
    ]


def test_19_executor_api_tour() -> None:
    lines = run_example("19_executor.py")
    assert lines[:3] == [
        "Ready with 4 slots",
        "Submitted: {'item': 42, 'result': 1764}",
        "Mapped: [0, 1, 4, 9, 16]",
    ]
    completed = [ast.literal_eval(line[11:]) for line in lines[3:23]]
    assert all(line.startswith("Completed: ") for line in lines[3:23])
    assert sorted(c["item"] for c in completed) == list(range(20))
    assert all(c["result"] == c["item"] ** 2 for c in completed)
    assert lines[23:] == [
        f"Item {i}: Error - Unlucky!" if i == 7 else f"Item {i}: {2 * i}"
        for i in range(10)
    ]
