"""Decorators that give a task a ready distributed environment on every node.

    @sky.compute
    @sky.integrations.torch()          # or the other order, around @sky.compute
    def train(epochs: int) -> dict: ...

    train(3) @ pool                    # one rank per node, one job

Broadcast with ``@``, a decorated function finds on each node the variables
its framework reads (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``...), taken from
:func:`~skyward.runtime.context.instance_info`, and a framework already
initialised: a torch process group, JAX's distributed runtime, a Keras
data-parallel distribution.

One process per node takes part: the rank is the node's index and the world
size is the number of nodes (a broadcast runs once per node, whatever the
pool's ``concurrency``), and the head node (node 0) hosts the rendezvous on
``instance_info().head_port``. Run one distributed call at a time per pool:
two at once would both rendezvous on that port.

Each call runs in a fresh child process of the worker, which the worker
waits for; the child's prints and errors come back as the worker's own, and
it dies with the worker. Frameworks keep process-wide state that outlives
a call (JAX initialises its distributed runtime once per process; DDP keeps
a torch process group, its store listening on the head port, alive after
``destroy_process_group``; CUDA keeps its memory), so a child that exits
takes all of it along and leaves the worker as it was.

This module runs on nodes: it imports nothing of Skyward outside
``skyward.runtime``, and the frameworks only inside the calls that use them.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any, TypeVar, cast

import cloudpickle

from skyward.runtime.context import instance_info

F = TypeVar("F", bound=Callable[..., Any])

TORCH_BACKENDS = ("nccl", "gloo", "mpi", "ucc", "xccl")
KERAS_BACKENDS = ("jax", "torch", "tensorflow")
DEFAULT_TIMEOUT = 300.0


# -- the world a call joins --------------------------------------------------


@dataclass(frozen=True)
class World:
    """Where this process stands in a distributed job."""

    rank: int
    size: int
    addr: str
    port: int
    node_ip: str

    @classmethod
    def current(cls) -> World:
        """This node's place in the pool, or a world of one off a pool.

        A world of one rendezvouses with itself on a free local port, so
        calls with ``.local()`` and calls on a one-node pool never contend
        for the pool's head port.
        """
        try:
            info = instance_info()
        except RuntimeError:
            return cls(0, 1, "127.0.0.1", _free_port(), "127.0.0.1")
        ips = {p.node: p.ip for p in info.peers}
        node_ip = ips.get(info.node, info.head_addr)
        if info.total_nodes == 1:
            return cls(0, 1, "127.0.0.1", _free_port(), node_ip)
        return cls(info.node, info.total_nodes, info.head_addr, info.head_port, node_ip)

    def env(self) -> dict[str, str]:
        """The variables torchrun, Hugging Face and accelerate read."""
        return {
            "MASTER_ADDR": self.addr,
            "MASTER_PORT": str(self.port),
            "WORLD_SIZE": str(self.size),
            "RANK": str(self.rank),
            "LOCAL_RANK": "0",
            "LOCAL_WORLD_SIZE": "1",
            "NODE_RANK": str(self.rank),
            "GROUP_RANK": str(self.rank),
        }

    def network_env(self) -> dict[str, str]:
        """Pin NCCL and Gloo to the interface that holds this node's address.

        Cloud machines often have several interfaces (docker0, a public one,
        an overlay); left to guess, NCCL and Gloo may pick one the peers
        cannot reach and hang in their first collective.
        """
        name = _interface_for(self.node_ip)
        if name is None:
            return {}
        return {"NCCL_SOCKET_IFNAME": name, "GLOO_SOCKET_IFNAME": name}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _interface_for(ip: str) -> str | None:
    """The name of the network interface that holds ``ip`` (Linux), if any."""
    try:
        import fcntl

        names = [name for _, name in socket.if_nameindex()]
    except (ImportError, OSError):
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                raw = fcntl.ioctl(
                    sock.fileno(),
                    0x8915,  # SIOCGIFADDR
                    struct.pack("256s", name[:15].encode()),
                )
            except OSError:
                continue
            if socket.inet_ntoa(raw[20:24]) == ip:
                return name
    return None


# -- frameworks ----------------------------------------------------------------


@contextlib.contextmanager
def _torch_group(backend: str | None, timeout: float, world: World) -> Iterator[None]:
    """A torch.distributed default process group for the length of the call."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        raise RuntimeError(
            "a torch.distributed process group is already initialised in this "
            "worker; with @sky.integrations.torch() the decorator initialises "
            "it, so remove the function's own init_process_group() call"
        )
    has_cuda = torch.cuda.is_available()
    chosen = backend or ("nccl" if has_cuda else "gloo")
    if "nccl" in chosen and not has_cuda:
        raise RuntimeError(
            f"backend {chosen!r} needs a CUDA GPU and node {world.rank} has none; "
            "leave backend=None to use nccl on GPU nodes and gloo elsewhere"
        )
    if has_cuda:
        torch.cuda.set_device(0)
    dist.init_process_group(
        backend=chosen,
        init_method="env://",
        rank=world.rank,
        world_size=world.size,
        timeout=timedelta(seconds=timeout),
    )
    yield
    # Reached only when the call returned. After an error the group stays
    # up until the process exits, so peers are not woken by a closed
    # connection before this rank's own error has reached the client.
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def _jax_runtime(world: World, timeout: float) -> Iterator[None]:
    """``jax.distributed`` with its coordinator on the head node."""
    import jax

    if world.size > 1:
        jax.distributed.initialize(
            coordinator_address=f"{world.addr}:{world.port}",
            num_processes=world.size,
            process_id=world.rank,
            initialization_timeout=int(timeout),
        )
    yield
    # Reached only when the call returned: shutting down waits for every
    # process, which a failed call must not do while its peers hang.
    if world.size > 1:
        jax.distributed.shutdown()


@contextlib.contextmanager
def _keras_session(
    backend: str, seed: int | None, world: World, timeout: float
) -> Iterator[None]:
    """Keras on ``backend``; on JAX across nodes, data-parallel over all devices."""
    os.environ["KERAS_BACKEND"] = backend
    if backend != "jax":
        if world.size > 1:
            raise RuntimeError(
                f"Keras trains across nodes only on the JAX backend, not "
                f"{backend!r}; use @sky.integrations.keras(backend='jax')"
            )
        import keras

        if seed is not None:
            keras.utils.set_random_seed(seed)
        yield
        return
    with _jax_runtime(world, timeout):
        import jax
        import keras

        if seed is not None:
            # Every process builds its own copy of the weights; one seed
            # makes the copies equal, as data parallelism needs.
            keras.utils.set_random_seed(seed)
        devices = jax.devices()
        if len(devices) > 1:
            keras.distribution.set_distribution(
                # Each node passes its own shard (sky.shard), so Keras must
                # not shard the data again.
                keras.distribution.DataParallel(
                    devices=devices, auto_shard_dataset=False
                )
            )
        yield


# -- how a decorated call runs -----------------------------------------------


@contextlib.contextmanager
def _variables(values: dict[str, str], defaults: dict[str, str]) -> Iterator[None]:
    """Set ``values``, and ``defaults`` where the user has not set them."""
    os.environ.update(values)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    yield


class _Setup(abc.ABC):
    """How one framework's environment is made; calls run in a fresh child."""

    @abc.abstractmethod
    def context(self, world: World) -> contextlib.AbstractContextManager[None]:
        """Enter the framework's distributed environment for ``world``."""

    def run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        return _run_in_child(self.context, World.current(), fn, args, kwargs)


@dataclass(frozen=True)
class TorchSetup(_Setup):
    backend: str | None
    timeout: float

    @contextlib.contextmanager
    def context(self, world: World) -> Iterator[None]:
        with (
            _variables(world.env(), world.network_env()),
            _torch_group(self.backend, self.timeout, world),
        ):
            yield


@dataclass(frozen=True)
class TransformersSetup(_Setup):
    backend: str | None
    timeout: float

    @contextlib.contextmanager
    def context(self, world: World) -> Iterator[None]:
        import torch

        extra = {}
        if not torch.cuda.is_available():
            # Without it accelerate takes a CPU node for a single process.
            extra["ACCELERATE_USE_CPU"] = "true"
        with (
            _variables({**world.env(), **extra}, world.network_env()),
            _torch_group(self.backend, self.timeout, world),
        ):
            yield


@dataclass(frozen=True)
class JaxSetup(_Setup):
    timeout: float

    def context(self, world: World) -> contextlib.AbstractContextManager[None]:
        return _jax_runtime(world, self.timeout)


@dataclass(frozen=True)
class KerasSetup(_Setup):
    backend: str
    seed: int | None
    timeout: float

    def context(self, world: World) -> contextlib.AbstractContextManager[None]:
        return _keras_session(self.backend, self.seed, world, self.timeout)


Setup = _Setup


class DistributedFunction:
    """A function that runs inside a distributed environment on each node.

    Made by the decorators of this module; called on a node, it prepares the
    environment, calls the function and tears the environment down.
    """

    def __init__(self, function: Callable[..., Any], setup: Setup):
        functools.update_wrapper(self, function)
        # Not ``fn``: that name marks a ComputeFunction, which the pool unwraps.
        self.function = function
        self.setup = setup

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.setup.run(self.function, args, kwargs)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"<distributed function {name} ({type(self.setup).__name__})>"


def _decorator(setup: Setup) -> Callable[[F], F]:
    def decorate(target: F) -> F:
        inner = getattr(target, "fn", None)
        if inner is not None and callable(inner) and hasattr(target, "local"):
            # A ComputeFunction (decorator above @sky.compute): wrap what it
            # calls and hand back a ComputeFunction of the same kind.
            compute_function: Any = type(target)
            return cast(F, compute_function(DistributedFunction(inner, setup)))
        if not callable(target):
            raise TypeError(
                f"a Skyward integration decorates a function, not "
                f"{type(target).__name__}"
            )
        return cast(F, DistributedFunction(target, setup))

    return decorate


def _check_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    return float(timeout)


def torch(
    backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[F], F]:
    """Run the function in a torch.distributed process group spanning the nodes.

    ``backend``: ``None`` picks ``"nccl"`` on a node with a CUDA GPU and
    ``"gloo"`` otherwise; any backend torch knows may be named, also in the
    ``"cpu:gloo,cuda:nccl"`` form. ``timeout``: seconds a rendezvous or a
    collective may wait for the other ranks before it fails.
    """
    return _decorator(
        TorchSetup(_check_torch_backend(backend), _check_timeout(timeout))
    )


def transformers(
    backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[F], F]:
    """The environment Hugging Face ``Trainer`` and ``accelerate`` read.

    A ``Trainer`` started on every node then trains as one job; the process
    group is set up as :func:`torch` does, with the same ``backend``.
    """
    return _decorator(
        TransformersSetup(_check_torch_backend(backend), _check_timeout(timeout))
    )


def jax(*, timeout: float = DEFAULT_TIMEOUT) -> Callable[[F], F]:
    """Run the function with ``jax.distributed`` initialised across the nodes.

    The coordinator is the head node; ``jax.devices()`` lists every node's
    devices and ``jax.local_devices()`` this node's.
    """
    return _decorator(JaxSetup(_check_timeout(timeout)))


def keras(
    backend: str = "jax", *, seed: int | None = 0, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[F], F]:
    """Run the function with Keras on ``backend``, data-parallel across nodes.

    On JAX, the distributed runtime is initialised and a
    ``keras.distribution.DataParallel`` over every node's devices is set, so
    ``model.fit`` on each node's shard trains one model. ``seed`` seeds
    Keras, NumPy and Python in every process so the initial weights agree;
    ``None`` leaves them unseeded.
    """
    if backend not in KERAS_BACKENDS:
        raise ValueError(
            f"Keras backend {backend!r} is not one of {', '.join(KERAS_BACKENDS)}"
        )
    return _decorator(KerasSetup(backend, seed, _check_timeout(timeout)))


def _check_torch_backend(backend: str | None) -> str | None:
    if backend is None:
        return None
    names = [part.split(":")[-1].strip() for part in backend.split(",")]
    unknown = [name for name in names if name not in TORCH_BACKENDS]
    if unknown or not names:
        raise ValueError(
            f"torch.distributed backend {backend!r} is not one of "
            f"{', '.join(TORCH_BACKENDS)} (or None to choose by the node's GPU)"
        )
    return backend


# -- calls in a child process ------------------------------------------------


class ChildTraceback(Exception):
    """The traceback of an error raised in a child process, as its cause."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


# After a failed call the child stays connected to its peers this long
# (unless the next call comes first): its error reaches the client, which
# aborts the peers, before they notice the failure on their own and race
# their consequential errors against the real one.
FAILED_CHILD_GRACE = 5.0

_lingering: list[subprocess.Popen[bytes]] = []


def _run_in_child(
    context: Callable[[World], contextlib.AbstractContextManager[None]],
    world: World,
    fn: Callable[..., Any],
    args: Any,
    kwargs: Any,
) -> Any:
    """Call ``fn`` in a fresh Python process under ``context(world)``.

    The child's output is relayed line by line to this process's streams
    (so it is framed before the result), and it dies with this process.
    """
    _reap_lingering()
    payload = cloudpickle.dumps((context, world, fn, args, kwargs), protocol=5)
    read_fd, write_fd = os.pipe()
    command = (
        f"from skyward.runtime.integrations import _child_main; _child_main({write_fd})"
    )
    try:
        proc = subprocess.Popen(
            [sys.executable, "-u", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stderr is not None
    relays = [
        threading.Thread(target=_relay, args=(proc.stdout, "stdout"), daemon=True),
        threading.Thread(target=_relay, args=(proc.stderr, "stderr"), daemon=True),
    ]
    for relay in relays:
        relay.start()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(payload)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    with os.fdopen(read_fd, "rb") as result:
        body = result.read()
    for relay in relays:
        relay.join()  # the child closes its output once the result is written
    if not body:
        status = proc.wait()
        name = getattr(fn, "__qualname__", repr(fn))
        raise RuntimeError(
            f"the process that ran {name} exited with status {status} "
            "before returning a result"
        )
    ok, value, tb = cloudpickle.loads(body)
    if ok:
        proc.wait()
        return value
    _lingering.append(proc)
    threading.Thread(target=proc.wait, daemon=True).start()
    raise value from ChildTraceback(tb)


def _reap_lingering() -> None:
    """Stop children of failed calls still waiting out their grace period.

    One may hold the head port, which this call's rendezvous needs.
    """
    while _lingering:
        proc = _lingering.pop()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def _relay(stream: IO[bytes], name: str) -> None:
    for line in iter(stream.readline, b""):
        target = sys.stdout if name == "stdout" else sys.stderr
        target.write(line.decode("utf-8", "replace"))
    stream.close()


def _child_main(result_fd: int) -> None:
    """Entry point of the child: read the call, run it, write the outcome."""
    _die_with_parent()
    context, world, fn, args, kwargs = cloudpickle.loads(sys.stdin.buffer.read())
    try:
        with context(world):
            value = fn(*args, **kwargs)
        outcome: tuple[bool, Any, str] = (True, value, "")
    except BaseException as exc:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        exc.__traceback__ = None
        outcome = (False, exc, tb)
    try:
        body = cloudpickle.dumps(outcome, protocol=5)
    except Exception as exc:
        ok, value, tb = outcome
        what = "result" if ok else f"error {type(value).__name__}: {value}"
        body = cloudpickle.dumps(
            (False, TypeError(f"the call's {what} cannot be pickled: {exc}"), tb)
        )
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(result_fd, "wb") as out:
        out.write(body)
    if not outcome[0]:
        # Let the worker's relays finish, then stay connected to the peers
        # while the error travels (see FAILED_CHILD_GRACE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        time.sleep(FAILED_CHILD_GRACE)
    # Skip interpreter teardown: framework atexit hooks may wait on peers.
    os._exit(0)


def _die_with_parent() -> None:
    """Have Linux kill this process when the worker that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:  # best effort; the worker's abort still reaches us
        return
    if os.getppid() == 1:
        os._exit(1)


__all__ = [
    "DistributedFunction",
    "World",
    "jax",
    "keras",
    "torch",
    "transformers",
]
