"""The core API on a real 2-node Local pool: operators, results, errors, logs."""

from __future__ import annotations

import os
import threading

import pytest

import skyward as sky
from skyward.errors import (
    RemoteTraceback,
    SerializationError,
    WorkerDiedError,
)


@sky.compute
def add(x: int, y: int) -> int:
    return x + y


@sky.compute
def where() -> tuple[int, int, int]:
    info = sky.instance_info()
    return info.node, info.slot, os.getpid()


@sky.compute
def topology() -> dict:
    info = sky.instance_info()
    return {
        "node": info.node,
        "total_nodes": info.total_nodes,
        "is_head": info.is_head,
        "concurrency": info.concurrency,
        "head_addr": info.head_addr,
        "head_port": info.head_port,
        "peers": [(p.node, p.ip) for p in info.peers],
        "env_node": os.environ["SKYWARD_NODE"],
    }


@sky.compute
def partition_sum(data: list[int]) -> int:
    return sum(sky.shard(data))


class Unlucky(Exception):
    """An exception class that exists only in this test module."""


@sky.compute
def fail(kind: str) -> None:
    if kind == "value":
        raise ValueError("bad value 7")
    raise Unlucky("no luck")


@sky.compute
def talk(text: str) -> str:
    print(text)
    print("to stderr", file=__import__("sys").stderr)
    return text.upper()


@sky.compute
def echo_size(blob: bytes) -> tuple[int, int]:
    return len(blob), sum(blob[::4096])


@sky.compute
def crash() -> None:
    os._exit(3)


def test_run_on_one_slot(pool2):
    assert add(1, 2) >> pool2 == 3


def test_broadcast_returns_one_result_per_node_in_node_order(pool2):
    results = where() @ pool2
    assert [node for node, _, _ in results] == [0, 1]


def test_group_and_gather_keep_order(pool2):
    assert (add(1, 2) & add(3, 4) & add(5, 6)) >> pool2 == (3, 7, 11)
    assert sky.gather(*(add(i, i) for i in range(50))) >> pool2 == tuple(
        2 * i for i in range(50)
    )
    assert sky.gather() >> pool2 == ()


def test_tasks_spread_over_every_slot(pool2):
    seen = set(sky.gather(*(where() for _ in range(64))) >> pool2)
    assert {(node, slot) for node, slot, _ in seen} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert len({pid for _, _, pid in seen}) == 4


def test_instance_info_describes_the_pool(pool2):
    head, other = topology() @ pool2
    assert head["is_head"] and not other["is_head"]
    assert (head["node"], other["node"]) == (0, 1)
    assert head["total_nodes"] == other["total_nodes"] == 2
    assert head["concurrency"] == 2
    assert head["head_addr"] == other["head_addr"] == "127.0.0.1"
    assert head["head_port"] == other["head_port"] > 0
    assert head["peers"] == [(0, "127.0.0.1"), (1, "127.0.0.1")]
    assert (head["env_node"], other["env_node"]) == ("0", "1")


def test_shard_inside_a_broadcast_covers_the_data(pool2):
    parts = partition_sum(list(range(1000))) @ pool2
    assert parts == (sum(range(500)), sum(range(500, 1000)))


def test_sky_refers_to_the_innermost_pool(pool2):
    with pool2:
        assert sky.current_pool() is pool2
        with sky.ComputePool(provider=sky.Local(), nodes=1) as inner:
            assert sky.current_pool() is inner
            assert add(2, 2) >> sky == 4
            assert len(where() @ sky) == 1  # inner has one node
        assert sky.current_pool() is pool2
        assert len(where() @ sky) == 2


def test_pool_decorator_opens_a_pool_for_the_call():
    @sky.pool(provider=sky.Local(), nodes=2)
    def main() -> tuple[int, ...]:
        return add(1, 1) @ sky

    assert main() == (2, 2)


def test_remote_exception_keeps_its_type_and_traceback(pool2):
    with pytest.raises(ValueError, match="bad value 7") as caught:
        fail("value") >> pool2
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert 'in fail\n    raise ValueError("bad value 7")' in cause.tb
    assert any("on node" in note for note in caught.value.__notes__)


def test_exception_class_from_the_callers_module_comes_back_as_itself(pool2):
    with pytest.raises(Unlucky, match="no luck"):
        fail("unlucky") >> pool2


def test_failed_group_raises_after_every_task_finished(pool2):
    with pytest.raises(ValueError):
        (add(1, 2) & fail("value") & add(3, 4)) >> pool2
    assert add(5, 5) >> pool2 == 10  # the pool is still fine


def test_prints_reach_the_terminal_prefixed_by_node(pool2, capfd):
    results = talk("hello from a node") @ pool2
    assert results == ("HELLO FROM A NODE",) * 2
    out, err = capfd.readouterr()
    assert "[node 0] hello from a node" in out.splitlines()
    assert "[node 1] hello from a node" in out.splitlines()
    assert "[node 0] to stderr" in err.splitlines()


def test_large_argument_arrives_intact(pool2):
    blob = bytes(range(256)) * (48 * 1024 * 1024 // 256)
    assert echo_size(blob) >> pool2 == (len(blob), sum(blob[::4096]))


def test_unpicklable_argument_is_named(pool2):
    lock = threading.Lock()
    with pytest.raises(SerializationError, match=r"Argument 'y' of add\(\) cannot be"):
        add(1, lock) >> pool2


def test_worker_crash_fails_its_task_and_the_slot_comes_back(pool2):
    with pytest.raises(WorkerDiedError, match=r"node \d, slot \d exited with status 3"):
        crash() >> pool2
    # the crashed worker is restarted; every slot works again
    results = sky.gather(*(add(i, 1) for i in range(20))) >> pool2
    assert results == tuple(i + 1 for i in range(20))


def test_compute_keeps_the_function_callable_locally():
    assert add.local(2, 3) == 5
    assert add.__name__ == "add"
    assert add(2, 3).local() == 5


def test_callbacks_added_before_open_receive_events():
    seen: list[str] = []
    pool = sky.ComputePool(provider=sky.Local(), nodes=1, console=False)
    pool.add_callback(lambda event: seen.append(type(event).__name__))
    with pool:
        assert add(1, 1) >> pool == 2
    assert seen[0] == "ProvisioningStarted"
    assert "FunctionResult" in seen
    assert seen[-2:] == ["PoolStopped", "CostFinal"]


def test_workers_keep_a_bounded_number_of_functions(pool2):
    from skyward.runtime.protocol import FUNCTION_CACHE

    def make(i: int):
        return lambda: i

    functions = [make(i) for i in range(FUNCTION_CACHE + 40)]
    results = [pool2.submit(fn).result(timeout=30) for fn in functions]
    assert results == list(range(FUNCTION_CACHE + 40))
    slots = pool2._cluster.slots
    assert max(len(slot._funcs_sent) for slot in slots) == FUNCTION_CACHE
    # the first functions were evicted on both ends and are sent again
    assert [pool2.submit(fn).result(timeout=30) for fn in functions[:5]] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_traceback_frames_from_elsewhere_are_not_mapped_to_the_task_file():
    from skyward.cluster.slot import map_traceback

    raise_line = fail.fn.__code__.co_firstlineno + 3  # decorator, def, if, raise
    tb = (
        "Traceback (most recent call last):\n"
        f'  File "<dynamic-code>", line {raise_line}, in fail\n'
        '  File "<dynamic-code>", line 3, in helper_from_another_module\n'
        "ValueError: x\n"
    )
    assert map_traceback(tb, __file__).splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{__file__}", line {raise_line}, in fail',
        '    raise ValueError("bad value 7")',
        '  File "<dynamic-code>", line 3, in helper_from_another_module',
        "ValueError: x",
    ]


class HoldsALock(Exception):
    def __init__(self) -> None:
        super().__init__("holding a lock")
        self.lock = threading.Lock()


@sky.compute
def raise_unpicklable() -> None:
    raise HoldsALock()


def test_an_exception_that_cannot_travel_comes_back_as_remote_error(pool2):
    from skyward.errors import RemoteError

    with pytest.raises(RemoteError, match=r"HoldsALock: holding a lock") as caught:
        raise_unpicklable() >> pool2
    assert caught.value.type_name.endswith("HoldsALock")
    assert caught.value.node in (0, 1)
    assert "raise HoldsALock()" in caught.value.__cause__.tb
