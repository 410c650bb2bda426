"""A pool's life: bad input, failures mid-way, interrupts, dead clients.

Every test checks that the pool's node processes, their workers and their
listening ports are gone afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

import skyward as sky
from skyward.cluster import Task
from skyward.cluster.cluster import Cluster, Node, NodeEndpoint
from skyward.errors import (
    ConfigurationError,
    NoActivePoolError,
    NodeLostError,
    PoolBrokenError,
    SerializationError,
    VersionMismatchError,
    WorkerDiedError,
)
from tests.conftest import port_is_open, wait_gone


@sky.compute
def add(x: int, y: int) -> int:
    return x + y


@sky.compute
def nap(seconds: float) -> int:
    time.sleep(seconds)
    return sky.instance_info().node


@sky.compute
def boom() -> None:
    raise KeyError("missing")


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"nodes": 0},
            r"`nodes`: Input should be greater than or equal to 1 \(got 0\)",
        ),
        ({"concurrency": 0}, r"`concurrency`: Input should be greater than or equal"),
        (
            {"accelerator": "A1000"},
            r"Unknown accelerator 'A1000'\. Did you mean 'A100'.*"
            r"Known accelerators: T4",
        ),
        (
            {"allocation": "free"},
            r"`allocation`: Input should be 'spot', 'on-demand', 'spot-if-available' "
            r"or 'cheapest' \(got 'free'\)",
        ),
        ({"memory": "4 gigs"}, r"cannot read '4 gigs' as a memory size"),
    ],
)
def test_bad_arguments_fail_before_anything_starts(kwargs, message):
    before = children()
    with pytest.raises(ConfigurationError, match=message):
        sky.ComputePool(provider=sky.Local(), **kwargs)
    assert children() == before


def test_no_active_pool_is_a_clear_error():
    with pytest.raises(NoActivePoolError, match=r"`>> sky` and `@ sky` need an active"):
        add(1, 2) >> sky
    with pytest.raises(NoActivePoolError, match="no pool is open"):
        add(1, 2) @ sky


def test_unpicklable_argument_leaves_nothing_running(leak_check):
    with pytest.raises(SerializationError, match=r"Argument 'y' of add\(\)"):
        with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
            leak_check.record(pool)
            add(1, threading.Lock()) >> pool
    leak_check.assert_clean()


def test_remote_exception_leaves_nothing_running(leak_check):
    with pytest.raises(KeyError, match="missing"):
        with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
            leak_check.record(pool)
            boom() @ pool
    leak_check.assert_clean()


def test_ctrl_c_in_the_block_tears_the_pool_down(leak_check):
    with pytest.raises(KeyboardInterrupt):
        with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
            leak_check.record(pool)
            raise KeyboardInterrupt
    leak_check.assert_clean()


def test_killed_node_fails_its_task_naming_it_and_the_pool_goes_on(leak_check):
    with sky.ComputePool(provider=sky.Local(), nodes=2, concurrency=2) as pool:
        leak_check.record(pool)
        task = Task.create(nap.fn, (30,), {})
        on_0, on_1 = pool.submit_tasks([task.pinned(0), task.pinned(1)])
        time.sleep(0.3)  # let both tasks start
        os.kill(pool._provisioner.pids[1], signal.SIGKILL)
        with pytest.raises(NodeLostError, match="Node 1 was lost") as caught:
            on_1.result(timeout=15)  # a hang fails here instead of passing
        assert caught.value.node == 1
        assert not on_0.done()  # node 0's task is untouched
        assert add(2, 2) >> pool == 4  # and node 0 still serves
        with pytest.raises(NodeLostError, match="Node 1"):
            nap(0) @ pool
    with pytest.raises(PoolBrokenError, match="shut down before this task finished"):
        on_0.result(timeout=5)
    leak_check.assert_clean()


CLIENT = textwrap.dedent("""
    import sys, time
    import skyward as sky
    from tests.conftest import pool_processes
    with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
        pids = [p.pid for p in pool_processes(pool)]
        ports = [ep.port for ep in pool.provisioned.endpoints]
        print(" ".join(map(str, pids)), "|", " ".join(map(str, ports)), flush=True)
        time.sleep(60)
""")


def _start_client() -> tuple[subprocess.Popen[str], list[psutil.Process], list[int]]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert client.stdout is not None
    line = client.stdout.readline()
    pids_text, _, ports_text = line.partition("|")
    procs = [psutil.Process(int(p)) for p in pids_text.split()]
    ports = [int(p) for p in ports_text.split()]
    assert len(procs) == 4 and len(ports) == 2
    return client, procs, ports


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)],
)
def test_sigterm_or_ctrl_c_to_the_client_tears_the_pool_down(sig, status):
    client, procs, ports = _start_client()
    client.send_signal(sig)
    assert client.wait(timeout=20) == status
    assert wait_gone(procs, timeout=5) == []
    assert [p for p in ports if port_is_open(p)] == []


def test_nodes_stop_themselves_when_the_client_dies():
    client, procs, ports = _start_client()
    client.kill()  # SIGKILL: the client cannot clean up
    client.wait(timeout=5)
    assert wait_gone(procs, timeout=10) == []
    assert [p for p in ports if port_is_open(p)] == []


def test_version_mismatch_names_both_versions():
    node = Node(
        NodeEndpoint(node=3, host="h", port=22, user="u", host_key="", client_key="")
    )
    hello = {"python": "3.9", "cloudpickle": "2.0.0"}
    with pytest.raises(VersionMismatchError) as caught:
        Cluster._check_versions(node, hello)
    message = str(caught.value)
    assert "Node 3 runs Python 3.9 with cloudpickle 2.0.0" in message
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"this client runs Python {here}" in message


def test_a_node_with_another_host_key_is_refused():
    import asyncssh

    from skyward.cluster.loop import run
    from skyward.errors import ProvisioningError

    with sky.ComputePool(provider=sky.Local(), nodes=1) as pool:
        real = pool.provisioned.endpoints[0]
        impostor_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key()
        forged = NodeEndpoint(
            node=0,
            host=real.host,
            port=real.port,
            user=real.user,
            host_key=impostor_key.decode(),
            client_key=real.client_key,
        )
        with pytest.raises(
            ProvisioningError,
            match=r"Could not connect to node 0.*Host key is not trusted",
        ):
            run(Node(forged).connect())


def test_many_slots_spread_over_several_connections():
    with sky.ComputePool(provider=sky.Local(), nodes=1, concurrency=10) as pool:
        node = pool._cluster.nodes[0]
        assert len(node.connections) == 2  # 8 sessions + 2, under MaxSessions=10
        results = sky.gather(*(nap(0.2) for _ in range(10))) >> pool
        assert results == (0,) * 10


@sky.compute
def crash() -> None:
    os._exit(5)


def test_a_node_whose_workers_keep_dying_is_given_up(leak_check):
    with sky.ComputePool(provider=sky.Local(), nodes=1) as pool:
        leak_check.record(pool)
        for _ in range(4):  # the first three crashes are followed by restarts
            with pytest.raises(WorkerDiedError, match="exited with status 5"):
                crash() >> pool
        with pytest.raises(PoolBrokenError, match="every node of the pool"):
            add(1, 1) >> pool
    leak_check.assert_clean()


@pytest.mark.parametrize(
    "error",
    [
        NodeLostError(2, "gone"),
        WorkerDiedError(1, 0, 9, "boom"),
        sky.errors.BootstrapError(0, "pip install", "out", 1),
        sky.errors.RemoteError("x.Y", "message", node=1),
        sky.errors.CostLimitExceeded("p", 1.0, 1.5, 3.0),
    ],
)
def test_errors_that_carry_data_survive_pickling(error):
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_a_missing_node_interpreter_is_a_provisioning_error():
    from skyward.errors import ProvisioningError

    with pytest.raises(ProvisioningError, match="Could not start Local node 0 with"):
        with sky.ComputePool(provider=sky.Local(python="/nonexistent/python")):
            pass
