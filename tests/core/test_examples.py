"""The guide's core examples run as written and print what the guide says."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_example as shared_run_example


def run_example(name: str, **env: str) -> str:
    return shared_run_example(name, {**os.environ, **env}, timeout=120)


def test_hello():
    assert run_example("1_hello.py").splitlines() == [
        "[node 0] That's one expensive sum.",
        "3",
    ]


def test_parallel_execution():
    assert run_example("2_parallel_execution.py").splitlines() == [
        "(6, 15, 24)",
        "6 20",
    ]


def test_broadcast_prints_the_total():
    out = run_example("5_broadcast.py").splitlines()
    assert out[-1] == "Total: 499500"
    assert out[:4] == [f"node {i}: 250 items" for i in range(4)]


def test_cluster_coordination():
    out = run_example("7_cluster_coordination.py").splitlines()
    assert "[node 0] I am the coordinator" in out
    assert "node 0/4 (head): 300" in out
    assert out[-1] == "Total: 4950"


@pytest.mark.slow
def test_concurrency():
    out = run_example("15_concurrency.py", SKYWARD_SLEEP="0.2").splitlines()
    assert out[-1] == str([2 * i for i in range(20)])
    prints = sorted(line for line in out if "Processing" in line)
    assert len(prints) == 20
    assert {line.split("]")[0] + "]" for line in prints} == {"[node 0]", "[node 1]"}
