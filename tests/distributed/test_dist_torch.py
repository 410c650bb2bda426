"""torch.distributed across 2 Local nodes over gloo, set up by the decorator."""

from __future__ import annotations

import os

import pytest

import skyward as sky
from skyward.errors import ConfigurationError
from skyward.runtime.integrations import DistributedFunction

torch = pytest.importorskip("torch", reason="CI installs torch (.ci/deps/dist.txt)")

ENV_KEYS = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GLOO_SOCKET_IFNAME",
)


@sky.compute
@sky.integrations.torch()
def all_reduce() -> dict:
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([dist.get_rank() + 1.0])
    dist.all_reduce(tensor)
    return {
        "sum": tensor.item(),
        "backend": dist.get_backend(),
        "env": {key: os.environ.get(key) for key in ENV_KEYS},
        "info": sky.instance_info(),
    }


@sky.compute
def after_the_call() -> dict:
    import torch.distributed as dist

    return {
        "initialized": dist.is_initialized(),
        "env": {key: os.environ.get(key) for key in ENV_KEYS},
    }


@sky.integrations.torch(backend="gloo")
@sky.compute
def ddp_steps(steps: int) -> dict:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    initial = [p.detach().clone() for p in model.parameters()]
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    # Each rank sees different data: only averaged gradients keep them equal.
    data = torch.Generator().manual_seed(100 + dist.get_rank())
    for _ in range(steps):
        x = torch.randn(32, 8, generator=data)
        y = x.sum(dim=1, keepdim=True)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(ddp(x), y).backward()
        optimizer.step()
    return {
        "initial": [t.tolist() for t in initial],
        "final": [p.detach().tolist() for p in model.parameters()],
    }


@sky.compute
@sky.integrations.torch()
def fail_on_rank_1() -> float:
    import torch
    import torch.distributed as dist

    if dist.get_rank() == 1:
        raise ValueError("rank 1 ran out of data")
    tensor = torch.ones(1)
    dist.all_reduce(tensor)  # rank 0 would wait here for rank 1 forever
    return tensor.item()


@sky.compute
def worker_pid() -> int:
    return os.getpid()


def test_all_reduce_across_two_nodes_gives_the_sum(pool):
    results = all_reduce() @ pool
    assert [r["sum"] for r in results] == [3.0, 3.0]  # (0 + 1) + (1 + 1)
    assert {r["backend"] for r in results} == {"gloo"}
    info = results[0]["info"]
    for node, r in enumerate(results):
        assert r["env"] == {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(info.head_port),
            "WORLD_SIZE": "2",
            "RANK": str(node),
            "LOCAL_RANK": "0",
            "LOCAL_WORLD_SIZE": "1",
            "GLOO_SOCKET_IFNAME": "lo",
        }


def test_the_group_and_the_variables_are_gone_after_the_call(pool):
    all_reduce() @ pool
    for r in after_the_call() @ pool:
        assert r["initialized"] is False
        assert r["env"] == dict.fromkeys(ENV_KEYS)


def test_ddp_keeps_parameters_identical_on_every_node(pool):
    first, second = ddp_steps(5) @ pool
    assert first["initial"] == second["initial"]
    assert first["final"] == second["final"]
    assert first["final"] != first["initial"]


def test_a_failing_rank_fails_the_broadcast_with_its_exception(pool):
    pids = worker_pid() @ pool
    with pytest.raises(ValueError, match="rank 1 ran out of data") as caught:
        fail_on_rank_1() @ pool
    assert "node 1" in str(caught.value.__notes__)
    # rank 0, blocked in its all-reduce, was stopped: its worker is new
    new_pids = worker_pid() @ pool
    assert new_pids[0] != pids[0]
    assert new_pids[1] == pids[1]
    # and the pool trains again
    assert [r["sum"] for r in all_reduce() @ pool] == [3.0, 3.0]


def test_sending_to_one_slot_of_several_nodes_is_refused(pool):
    with pytest.raises(ConfigurationError, match=r"all_reduce\(\.\.\.\) @ pool"):
        all_reduce() >> pool
    with pytest.raises(ConfigurationError, match="broadcast it"):
        sky.gather(all_reduce(), all_reduce()) >> pool
    with pytest.raises(ConfigurationError, match="broadcast it"):
        pool.submit(all_reduce)


def test_one_node_pool_runs_with_a_world_of_one():
    with sky.ComputePool(provider=sky.Local(), nodes=1) as single:
        result = all_reduce() >> single
    assert result["sum"] == 1.0
    assert result["env"]["WORLD_SIZE"] == "1"
    assert result["env"]["RANK"] == "0"


def test_local_call_runs_as_a_world_of_one():
    import torch.distributed as dist

    @sky.integrations.torch()
    def world() -> tuple[int, int]:
        return dist.get_rank(), dist.get_world_size()

    assert world() == (0, 1)
    assert not dist.is_initialized()


def test_both_decorator_orders_make_compute_functions():
    assert isinstance(all_reduce, sky.ComputeFunction)
    assert isinstance(all_reduce.fn, DistributedFunction)
    assert isinstance(ddp_steps, sky.ComputeFunction)
    assert isinstance(ddp_steps.fn, DistributedFunction)
    assert ddp_steps.__name__ == "ddp_steps"


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="nccl, gloo"):
        sky.integrations.torch(backend="nccll")
    with pytest.raises(ValueError, match="positive"):
        sky.integrations.torch(timeout=0)
    with pytest.raises(ValueError, match="jax, torch, tensorflow"):
        sky.integrations.keras(backend="theano")


def test_nccl_on_a_node_without_gpu_says_so(pool):
    @sky.compute
    @sky.integrations.torch(backend="nccl")
    def needs_gpu() -> None:
        return None

    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        needs_gpu() @ pool


def test_a_decorated_function_s_remote_traceback_shows_its_source() -> None:
    from skyward.cluster.slot import map_traceback
    from skyward.cluster.task import function_ref

    ref = function_ref(sky.integrations.torch()(_raises_inside))
    assert ref.filename == __file__
    tb = (
        "Traceback (most recent call last):\n"
        f'  File "<dynamic-code>", line {_RAISE_LINE}, in _raises_inside\n'
        "ValueError: no\n"
    )
    mapped = map_traceback(tb, ref.filename)
    assert f'File "{__file__}", line {_RAISE_LINE}, in _raises_inside' in mapped
    assert 'raise ValueError("no")' in mapped


def _raises_inside() -> None:
    raise ValueError("no")


_RAISE_LINE = _raises_inside.__code__.co_firstlineno + 1
