"""The guide's distributed examples run on 2 Local nodes and print what it says."""

from __future__ import annotations

import pytest

from tests.conftest import run_example as shared_run_example


def run_example(name: str) -> list[str]:
    return shared_run_example(name).splitlines()


def test_data_sharding():
    assert run_example("6_data_sharding.py") == [
        "node 0: 5000 samples, 79 batches per epoch",
        "node 1: 5000 samples, 79 batches per epoch",
        "Sampler: disjoint=True, covers all=True, reshuffled per epoch=True",
        "shard: sizes=[500, 500], aligned=True, covers all=True",
    ]


def test_pytorch_distributed():
    out = run_example("10_pytorch_distributed.py")
    epochs = [line for line in out if line.startswith("[node 0] Epoch ")]
    assert len(epochs) == 10
    first = float(epochs[0].split("loss=")[1])
    last = float(epochs[-1].split("loss=")[1])
    assert last < first
    assert out[-3].startswith("rank 0/2 (node 0): final loss ")
    assert out[-2].startswith("rank 1/2 (node 1): final loss ")
    assert out[-1] == "Weights identical on every node: True"


@pytest.mark.slow
def test_keras_training():
    out = run_example("11_keras_training.py")
    results = [line for line in out if line.startswith("node ")]
    assert len(results) == 2
    # one model: both nodes report the same losses and accuracy
    assert results[0].split(":", 1)[1] == results[1].split(":", 1)[1]
    first, last = results[0].split("loss ")[1].split(",")[0].split(" -> ")
    assert float(last) < float(first)
    assert "[node 0] Epoch 10/10" in out


@pytest.mark.slow
def test_huggingface_finetuning():
    out = run_example("12_huggingface_finetuning.py")
    assert out[-3].startswith("node 0: world size 2, 48 steps, ")
    assert out[-2].startswith("node 1: world size 2, 48 steps, ")
    assert out[-1] == "Same weights on every node: True"


def test_vastai_overlay_all_reduce_check():
    out = run_example("22_vastai_overlay.py")
    assert out == [
        "rank 0/2 on node 0 (127.0.0.1): all-reduce 3",
        "rank 1/2 on node 1 (127.0.0.1): all-reduce 3",
        "GLOO: SUCCESS",
    ]
