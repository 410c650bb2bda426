"""Keras on JAX and plain JAX across 2 Local nodes (CPU, Gloo collectives)."""

from __future__ import annotations

import importlib.util

import psutil
import pytest

import skyward as sky
from tests.conftest import wait_gone

pytest.importorskip("jax", reason="CI installs jax (.ci/deps/dist.txt)")
# Not imported here: without KERAS_BACKEND, keras would load TensorFlow.
if importlib.util.find_spec("keras") is None:
    pytest.skip("CI installs keras (.ci/deps/dist.txt)", allow_module_level=True)


@sky.integrations.jax()
@sky.compute
def jax_world() -> dict:
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.array([jax.process_index() + 1]))
    return {
        "index": jax.process_index(),
        "count": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
        "gathered": gathered.ravel().tolist(),
    }


@sky.integrations.keras(backend="jax")
@sky.compute
def fit(epochs: int) -> dict:
    import keras
    import numpy as np

    info = sky.instance_info()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x @ np.arange(8, dtype="float32"))[:, None]
    x_local, y_local = sky.shard(x, y)  # each node its own half

    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x_local, y_local, epochs=epochs, batch_size=32, verbose=0)
    print(f"node {info.node} trained on {len(x_local)} rows")
    return {
        "backend": keras.backend.backend(),
        "distribution": type(keras.distribution.distribution()).__name__,
        "loss": history.history["loss"],
        "weights": [w.tolist() for w in model.get_weights()],
    }


@sky.integrations.keras()
@sky.compute
def fails_on_node_1(pid_file: str) -> None:
    import os
    import time
    from pathlib import Path

    path = Path(pid_file)
    if sky.instance_info().node == 1:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise ArithmeticError("node 1 diverged")
    path.write_text(str(os.getpid()))
    time.sleep(3600)  # stands in for a step waiting on node 1


def test_jax_runs_one_process_per_node_with_the_head_as_coordinator(pool):
    first, second = jax_world() @ pool
    assert (first["index"], second["index"]) == (0, 1)
    assert first["count"] == second["count"] == 2
    assert first["devices"] == 2 and first["local_devices"] == 1
    assert first["gathered"] == second["gathered"] == [1, 2]


@pytest.mark.slow
def test_keras_on_jax_trains_one_model_across_two_nodes(pool):
    first, second = fit(4) @ pool
    assert first["backend"] == "jax"
    assert first["distribution"] == "DataParallel"
    losses = first["loss"]
    assert losses[-1] < losses[0]
    # one model: the same losses and the same weights on both nodes
    assert second["loss"] == losses
    assert second["weights"] == first["weights"]


def test_a_second_distributed_call_on_the_same_workers_works(pool):
    # JAX initialises its runtime once per process: each call gets its own
    assert [r["gathered"] for r in jax_world() @ pool] == [[1, 2], [1, 2]]


@pytest.mark.timeout(120)
def test_a_failing_node_fails_the_keras_broadcast(pool, tmp_path):
    pid_file = tmp_path / "node0.pid"
    with pytest.raises(ArithmeticError, match="node 1 diverged"):
        fails_on_node_1(str(pid_file)) @ pool
    # node 0's training process went down with its worker
    child = int(pid_file.read_text())
    if psutil.pid_exists(child):
        assert wait_gone([psutil.Process(child)]) == []
    assert [r["count"] for r in jax_world() @ pool] == [2, 2]
