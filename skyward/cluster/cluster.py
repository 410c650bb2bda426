"""The client side of the SSH execution layer.

    Cluster
      |- Node 0: asyncssh connection(s) -- Slot 0 .. Slot c-1 (worker processes)
      |- Node 1: ...
      `- queue of tasks, pinned queues for broadcasts

``Cluster.start`` connects to every node in parallel, pinning the host key
provisioning reported, uploads the runtime bundle once per node, and starts
one worker per slot. ``submit`` hands tasks to the event loop; ``pump`` hands
them to the least-loaded slot with room, pipelining short tasks. A node that
goes away fails exactly the tasks it held, with an error naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shlex
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import asyncssh
import cloudpickle

from skyward import events
from skyward.cluster.bundle import bundle
from skyward.cluster.slot import Slot, closed_error
from skyward.cluster.task import Task
from skyward.errors import (
    NodeLostError,
    PoolBrokenError,
    ProvisioningError,
    TaskAbortedError,
    VersionMismatchError,
    WorkerDiedError,
)
from skyward.runtime.context import InstanceInfo, Peer

log = logging.getLogger(__name__)

# sshd's default MaxSessions is 10; keep one spare for commands on the node.
SESSIONS_PER_CONNECTION = 8
WORKER_RESPAWNS = 3
# The steps of bringing a node up that the cluster reports itself; the
# bootstrap (``Cluster.prepare``) reports its own between runtime and workers.
STEP_CONNECT = "connect"
STEP_RUNTIME = "upload runtime"
STEP_WORKERS = "start workers"
CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
]


@dataclass(frozen=True)
class NodeEndpoint:
    """How to reach one node, as provisioning reported it."""

    node: int
    host: str
    port: int
    user: str
    host_key: str
    client_key: str
    private_ip: str = ""
    python: str = "python3"
    instance_id: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def peer_ip(self) -> str:
        return self.private_ip or self.host


@dataclass
class Topology:
    """What every worker is told about the pool in its INIT frame."""

    pool: str
    concurrency: int
    head_port: int
    env: dict[str, str] = field(default_factory=dict)
    accelerator: str | None = None
    accelerator_count: int = 0
    accelerator_memory_gb: float = 0.0
    slot_env: Callable[[int, int], dict[str, str]] | None = None


def _claim(future: Future[Any]) -> bool:
    """Mark a queued task's future running; False if it was cancelled.

    A task put back in a queue after its worker was killed unstarted is
    already running.
    """
    return future.running() or future.set_running_or_notify_cancel()


class Node:
    """The SSH connections to one node and the slots on them."""

    def __init__(self, endpoint: NodeEndpoint):
        self.endpoint = endpoint
        self.index = endpoint.node
        self.connections: list[asyncssh.SSHClientConnection] = []
        self.slots: list[Slot] = []
        self.lost = False
        self.python: str = endpoint.python
        self.env: dict[str, str] = dict(endpoint.env)
        # Where the runtime bundle lives on the node, relative to its home.
        self.runtime_dir = ""
        # Set by the bootstrap: the node's accelerator devices, and per slot
        # the environment and InstanceInfo fields that pin it to one of them.
        self.devices: list[str] = []
        self.slot_env: dict[int, dict[str, str]] = {}
        self.slot_info: dict[int, dict[str, Any]] = {}

    async def connect(self) -> asyncssh.SSHClientConnection:
        ep = self.endpoint
        try:
            host_key = asyncssh.import_public_key(ep.host_key)
            client_key = asyncssh.import_private_key(ep.client_key)
            conn = await asyncssh.connect(
                ep.host,
                ep.port,
                username=ep.user,
                client_keys=[client_key],
                known_hosts=([host_key], [], []),
                agent_path=None,
                config=[],
                preferred_auth="publickey",
                keepalive_interval=5,
                keepalive_count_max=3,
                encryption_algs=CIPHERS,
                compression_algs=None,
                connect_timeout=30,
            )
        except (OSError, asyncssh.Error) as exc:
            raise ProvisioningError(
                f"Could not connect to node {self.index} at {ep.host}:{ep.port} "
                f"as {ep.user!r}: {exc}"
            ) from exc
        self.connections.append(conn)
        return conn

    def connection_for(self, slot_index: int) -> int:
        return slot_index // SESSIONS_PER_CONNECTION

    async def run(self, command: str, data: bytes | None = None) -> str:
        conn = self.connections[0]
        result = await conn.run(command, input=data, encoding=None, check=False)
        text = "".join(
            part.decode("utf-8", "replace") if isinstance(part, bytes) else part
            for part in (result.stdout or b"", result.stderr or b"")
        )
        if result.exit_status != 0:
            raise ProvisioningError(
                f"Command failed on node {self.index} with exit status "
                f"{result.exit_status}: {command}\n{text[-2000:]}"
            )
        return text

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
        for conn in self.connections:
            conn.close()


_EXTRACT = (
    "import io,sys,tarfile;"
    "tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()),mode='r:gz')"
    ".extractall(sys.argv[1])"
)


class Cluster:
    """Runs tasks on the slots of a set of nodes. Lives on the shared loop."""

    def __init__(
        self,
        endpoints: list[NodeEndpoint],
        topology: Topology,
        emit: Callable[[events.SkywardEvent], None],
    ):
        self.nodes = [Node(ep) for ep in endpoints]
        self.topology = topology
        self.emit = emit
        self.watch_tasks = False
        # Runs on each node after the runtime is uploaded and before workers
        # start: the bootstrap sets up the environment and may change
        # ``node.python`` and ``node.env``.
        self.prepare: Callable[[Node], Awaitable[None]] | None = None
        self._queue: deque[Task] = deque()
        self._pinned: dict[int, deque[Task]] = {n.index: deque() for n in self.nodes}
        self._closing = False
        self._respawns: dict[tuple[int, int], int] = {}
        self._respawning: set[tuple[int, int]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._metrics: list[asyncio.Task[None]] = []
        # What tasks fail with once the cluster stops (a cost limit, say).
        self._stop_error: BaseException | None = None

    # -- start --------------------------------------------------------------

    @property
    def slots(self) -> list[Slot]:
        return [slot for node in self.nodes for slot in node.slots]

    async def start(self) -> None:
        results = await asyncio.gather(
            *(self._start_node(n) for n in self.nodes), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _start_node(self, node: Node) -> None:
        async with self._step(node, STEP_CONNECT):
            await node.connect()
        digest, data = bundle()
        remote = f".skyward/runtime-{digest}"
        async with self._step(node, STEP_RUNTIME):
            await node.run(
                f"test -f {remote}/.complete || (python3 -c "
                f"{shlex.quote(_EXTRACT)} {remote}.tmp-$$ && rm -rf {remote} && "
                f"mv {remote}.tmp-$$ {remote} && touch {remote}/.complete)",
                data,
            )
        node.runtime_dir = remote
        if self.prepare is not None:
            await self.prepare(node)
        command = (
            f'PYTHONPATH="$PWD/{remote}" exec {shlex.quote(node.python)} '
            f"-u -m skyward.runtime.worker"
        )
        async with self._step(node, STEP_WORKERS):
            extra = -(-self.topology.concurrency // SESSIONS_PER_CONNECTION) - 1
            for _ in range(extra):
                await node.connect()
            node.slots = [
                Slot(self, node.index, i) for i in range(self.topology.concurrency)
            ]
            await asyncio.gather(
                *(self._start_slot(node, s, command) for s in node.slots)
            )

    @contextlib.asynccontextmanager
    async def _step(self, node: Node, step: str) -> AsyncIterator[None]:
        """Report one step of bringing ``node`` up as it starts and ends."""
        pool = self.topology.pool
        started = time.monotonic()
        self.emit(events.BootstrapProgress(pool=pool, node=node.index, step=step))
        status: Literal["done", "failed"] = "failed"
        try:
            yield
            status = "done"
        finally:
            self.emit(
                events.BootstrapProgress(
                    pool=pool,
                    node=node.index,
                    step=step,
                    elapsed=time.monotonic() - started,
                    status=status,
                )
            )

    def start_metrics(self, interval: float) -> None:
        """Sample every node's resource use every ``interval`` seconds."""
        from skyward.cluster import metrics

        live = [n for n in self.nodes if not n.lost and n.runtime_dir]
        self._metrics = metrics.start(live, self.topology.pool, interval, self.emit)

    def _init_for(self, slot: Slot) -> dict[str, Any]:
        topo = self.topology
        node = self.nodes[slot.node]
        peers = [Peer(n.index, n.endpoint.peer_ip, n.endpoint.host) for n in self.nodes]
        info = InstanceInfo(
            node=slot.node,
            total_nodes=len(self.nodes),
            slot=slot.index,
            concurrency=topo.concurrency,
            head_addr=peers[0].ip,
            head_port=topo.head_port,
            peers=peers,
            pool=topo.pool,
            accelerator=topo.accelerator,
            accelerator_count=topo.accelerator_count,
            accelerator_memory_gb=topo.accelerator_memory_gb,
            devices=list(node.devices),
        )
        info = replace(info, **node.slot_info.get(slot.index, {}))
        env = dict(topo.env)
        env.update(node.env)
        env.update(node.slot_env.get(slot.index, {}))
        if topo.slot_env is not None:
            env.update(topo.slot_env(slot.node, slot.index))
        from dataclasses import asdict

        return {"info": asdict(info), "env": env}

    async def _start_slot(self, node: Node, slot: Slot, command: str) -> None:
        conn = node.connections[node.connection_for(slot.index)]
        slot.command = command
        try:
            hello = await asyncio.wait_for(
                slot.start(conn, command, self._init_for(slot)), timeout=60
            )
        except WorkerDiedError as exc:
            raise ProvisioningError(
                f"The worker for node {node.index}, slot {slot.index} did not start "
                f"(exit status {exc.exit_status}). Its output:\n{exc.stderr.strip()}"
            ) from None
        except TimeoutError:
            raise ProvisioningError(
                f"The worker for node {node.index}, slot {slot.index} did not answer "
                f"within 60 s. Its output so far:\n{slot.stderr_tail()}"
            ) from None
        self._check_versions(node, hello)

    @staticmethod
    def _check_versions(node: Node, hello: dict[str, Any]) -> None:
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        if hello["python"] != here or hello["cloudpickle"] != cloudpickle.__version__:
            raise VersionMismatchError(
                f"Node {node.index} runs Python {hello['python']} with cloudpickle "
                f"{hello['cloudpickle']}, but this client runs Python {here} with "
                f"cloudpickle {cloudpickle.__version__}. Functions pickled on one "
                "cannot be loaded on the other: give the pool an Image with "
                f"python={here!r} and install cloudpickle=={cloudpickle.__version__}."
            )

    # -- dispatch -----------------------------------------------------------

    def submit(self, tasks: Iterable[Task]) -> None:
        """Queue tasks (loop thread). Failures land on the tasks' futures."""
        if self._closing:
            for task in tasks:
                if _claim(task.future):
                    task.future.set_exception(self._closed_error())
            return
        for task in tasks:
            if task.node is None:
                self._queue.append(task)
            elif task.node in self._pinned and not self.nodes[task.node].lost:
                self._pinned[task.node].append(task)
            elif _claim(task.future):
                task.future.set_exception(
                    NodeLostError(task.node, "it was lost before this task was sent")
                    if task.node in self._pinned
                    else PoolBrokenError(f"the pool has no node {task.node}")
                )
        self.pump()

    def submit_threadsafe(self, tasks: list[Task]) -> None:
        from skyward.cluster.loop import get_loop

        get_loop().call_soon_threadsafe(self.submit, tasks)

    def pump(self) -> None:
        """Move queued tasks to slots with room, least-loaded first."""
        for node_index, pinned in self._pinned.items():
            if pinned:
                self._fill(self.nodes[node_index].slots, pinned)
        if self._queue:
            self._fill(self.slots, self._queue)
            if (
                self._queue
                and not self._respawning
                and not any(s.alive for s in self.slots)
            ):
                self._fail_queue(
                    PoolBrokenError(
                        "every node of the pool has been lost; no slot can run tasks"
                    )
                )

    def _fill(self, slots: list[Slot], queue: deque[Task]) -> None:
        """Deal tasks round-robin to slots with room, emptiest first.

        Each slot's share is sent in one write, so a burst of small tasks
        costs one SSH message per slot, not one per task.
        """
        ready = sorted((s for s in slots if s.room > 0), key=lambda s: len(s.inflight))
        room = {id(s): s.room for s in ready}
        batches: dict[int, list[Task]] = {id(s): [] for s in ready}
        while queue and ready:
            for slot in list(ready):
                if not queue:
                    break
                task = queue.popleft()
                if not _claim(task.future):
                    continue  # cancelled while queued: it never runs
                batches[id(slot)].append(task)
                room[id(slot)] -= 1
                if room[id(slot)] == 0:
                    ready.remove(slot)
        for slot in slots:
            batch = batches.get(id(slot))
            if not batch:
                continue
            slot.send(batch)
            if self.watch_tasks:
                for task in batch:
                    self.emit(
                        events.FunctionCall(
                            pool=self.topology.pool,
                            function_name=task.function.name,
                            node=slot.node,
                            slot=slot.index,
                            task_id=task.task_id,
                        )
                    )

    def _fail_queue(self, error: BaseException) -> None:
        for queue in (self._queue, *self._pinned.values()):
            while queue:
                task = queue.popleft()
                if _claim(task.future):
                    task.future.set_exception(error)

    # -- callbacks from slots -----------------------------------------------

    def on_log(self, slot: Slot, stream: str, text: str) -> None:
        for line in text.splitlines():
            self.emit(
                events.LogLine(
                    pool=self.topology.pool,
                    node=slot.node,
                    slot=slot.index,
                    stream=stream,  # type: ignore[arg-type]
                    line=line,
                )
            )

    def on_finished(
        self, slot: Slot, task: Task, seconds: float, error: BaseException | None
    ) -> None:
        if self.watch_tasks:
            self.emit(
                events.FunctionResult(
                    pool=self.topology.pool,
                    function_name=task.function.name,
                    node=slot.node,
                    slot=slot.index,
                    task_id=task.task_id,
                    duration_ms=seconds * 1000,
                    ok=error is None,
                    error=None if error is None else f"{type(error).__name__}: {error}",
                )
            )

    def on_slot_closed(self, slot: Slot, exc: Exception | None) -> None:
        node = self.nodes[slot.node]
        if self._closing:
            slot.fail_inflight(lambda task: self._closed_error())
            return
        if slot.exit_status is None or node.lost:
            # No exit status: the connection itself went away with the node.
            self._lose_node(node, str(exc) if exc else "its connection closed")
            return
        status = slot.exit_status
        tail = slot.stderr_tail()
        if slot.aborting:
            self._settle_aborted(slot)
        slot.fail_inflight(
            lambda task: WorkerDiedError(slot.node, slot.index, status, tail)
        )
        key = (slot.node, slot.index)
        if not slot.aborting:  # a worker killed on purpose is not a crash
            self._respawns[key] = self._respawns.get(key, 0) + 1
        if self._respawns.get(key, 0) <= WORKER_RESPAWNS:
            log.log(
                logging.INFO if slot.aborting else logging.WARNING,
                "Worker of node %d slot %d exited with status %s; restarting",
                slot.node,
                slot.index,
                status,
            )
            task = asyncio.get_running_loop().create_task(self._respawn(node, slot))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            self._respawning.add(key)
        self._check_node_usable(node)
        self.pump()

    # -- aborting -----------------------------------------------------------

    def abort(self, tasks: Iterable[Task], reason: str) -> None:
        """Stop ``tasks`` (loop thread), each failing with TaskAbortedError.

        A task still queued is dropped. A running one cannot be interrupted
        inside its worker (it may be blocked in a collective, waiting for a
        peer that failed), so its worker is killed and then restarted.
        """
        wanted = {t.task_id: t for t in tasks if not t.future.done()}
        for queue in (self._queue, *self._pinned.values()):
            for task in [t for t in queue if t.task_id in wanted]:
                queue.remove(task)
                node = task.node if task.node is not None else -1
                if _claim(task.future):
                    task.future.set_exception(TaskAbortedError(node, reason))
        for slot in self.slots:
            hit = [i for i in slot.inflight if i in wanted]
            if not hit or not slot.alive:
                continue
            for task_id in hit:
                slot.aborting[task_id] = TaskAbortedError(slot.node, reason)
            slot.alive = False  # no new work until it is restarted
            killing = asyncio.get_running_loop().create_task(self._kill_worker(slot))
            self._background.add(killing)
            killing.add_done_callback(self._background.discard)

    async def _kill_worker(self, slot: Slot) -> None:
        node = self.nodes[slot.node]
        log.info(
            "Stopping the worker of node %d slot %d (pid %s) to abort its task",
            slot.node,
            slot.index,
            slot.pid,
        )
        try:
            if slot.pid is None:
                raise ProvisioningError("the worker never said its pid")
            await node.run(f"kill -KILL {int(slot.pid)}")
        except (ProvisioningError, OSError, asyncssh.Error) as exc:
            # Closing its channel makes the worker exit on its own (it
            # watches its stdin), only less promptly than a signal.
            log.warning("Could not kill worker %s: %s", slot.pid, exc)
            slot.close()

    def _settle_aborted(self, slot: Slot) -> None:
        """Fail the aborted tasks of a killed worker; requeue the unstarted."""
        tasks = list(slot.inflight.values())
        slot.inflight = {}
        for position, task in enumerate(tasks):
            error = slot.aborting.get(task.task_id)
            if error is None and position > 0:
                # Queued behind the running task, never started: run it again.
                queue = self._queue if task.node is None else self._pinned[task.node]
                queue.appendleft(task)
                continue
            if error is None:
                error = TaskAbortedError(
                    slot.node, "its worker was stopped to abort another task"
                )
            if not task.future.done():
                task.future.set_exception(error)

    async def _respawn(self, node: Node, slot: Slot) -> None:
        try:
            await self._start_slot(node, slot, slot.command)
        except Exception as exc:
            if not self._closing:  # a pool closing meanwhile is no failure
                log.warning(
                    "Could not restart node %d slot %d: %s",
                    node.index,
                    slot.index,
                    exc,
                )
        finally:
            self._respawning.discard((node.index, slot.index))
        self._check_node_usable(node)
        self.pump()

    def _check_node_usable(self, node: Node) -> None:
        """A node whose workers all died for good is as good as lost."""
        if node.lost or self._closing:
            return
        if any(s.alive for s in node.slots):
            return
        if any(n == node.index for n, _ in self._respawning):
            return
        self._lose_node(node, "its workers kept exiting and could not be restarted")

    def _lose_node(self, node: Node, reason: str) -> None:
        first = not node.lost
        node.lost = True
        for slot in node.slots:
            slot.alive = False
            slot.fail_inflight(lambda task: NodeLostError(node.index, reason))
        pinned = self._pinned.get(node.index)
        while pinned:
            task = pinned.popleft()
            if _claim(task.future):
                task.future.set_exception(NodeLostError(node.index, reason))
        if first:
            log.error(
                "Node %d of pool %s was lost: %s",
                node.index,
                self.topology.pool,
                reason,
            )
            self.emit(
                events.NodeLost(pool=self.topology.pool, node=node.index, reason=reason)
            )
            for conn in node.connections:
                conn.abort()
        self.pump()

    # -- stop ---------------------------------------------------------------

    def _closed_error(self) -> BaseException:
        if self._stop_error is None:
            return closed_error()
        # One instance per future: a raised exception collects its traceback.
        return copy.copy(self._stop_error)

    async def close(
        self, timeout: float = 5.0, error: BaseException | None = None
    ) -> None:
        """Stop the workers and close every connection.

        Queued and running tasks fail with ``error`` when given (why the pool
        stopped), else with a :class:`PoolBrokenError` saying it shut down.
        """
        if error is not None and self._stop_error is None:
            self._stop_error = error
        self._closing = True
        for task in self._metrics:
            task.cancel()
        self._fail_queue(self._closed_error())
        closing = [s.closed for s in self.slots if s.closed is not None]
        for node in self.nodes:
            node.close()
        waits = [c.wait_closed() for n in self.nodes for c in n.connections]
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(
                asyncio.gather(*waits, *closing, return_exceptions=True),
                timeout=max(0.1, deadline - time.monotonic()),
            )
        except TimeoutError:
            for node in self.nodes:
                for conn in node.connections:
                    conn.abort()
