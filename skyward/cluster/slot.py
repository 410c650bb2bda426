"""One worker slot: an SSH channel running ``python -m skyward.runtime.worker``.

A slot writes TASK frames to the worker's stdin and reads RESULT and LOG
frames from its stdout. It runs entirely on the shared event loop; its
callbacks are asyncssh session callbacks, so frames are decoded as the bytes
arrive, with no coroutine per message.
"""

from __future__ import annotations

import asyncio
import json
import linecache
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncssh
import cloudpickle

from skyward.cluster.task import Task
from skyward.errors import (
    NodeLostError,
    PoolBrokenError,
    RemoteError,
    RemoteTraceback,
    WorkerDiedError,
)
from skyward.runtime.protocol import (
    CHUNK,
    FUNCTION_CACHE,
    HELLO,
    INIT,
    LOG,
    LOG_HEAD,
    RESULT,
    RESULT_HEAD,
    STDERR,
    FrameDecoder,
    frame_header,
)

if TYPE_CHECKING:
    from skyward.cluster.cluster import Cluster

log = logging.getLogger(__name__)

# How many tasks a slot may have sent but not finished, by how long its
# recent tasks took: short tasks are pipelined so the worker never waits on
# a round trip; long ones are not, so a queue never forms behind them.
FAST_TASK = 0.005
SLOW_TASK = 0.1
FAST_WINDOW = 32


_DYNAMIC_FRAME = re.compile(r'^  File "<dynamic-code>", line (\d+), in (.+)$')


def map_traceback(tb: str, filename: str | None) -> str:
    """Point frames of code shipped by value back at the caller's source file.

    cloudpickle names such code "<dynamic-code>"; the line numbers are the
    original ones, so the source line can be shown from the local file. A
    frame is mapped only when that file defines its function above that
    line: code shipped from another module stays as it came.
    """
    if not filename or "<dynamic-code>" not in tb:
        return tb
    out = []
    for line in tb.splitlines():
        match = _DYNAMIC_FRAME.match(line)
        if match is None or not _defines(filename, int(match.group(1)), match.group(2)):
            out.append(line)
            continue
        lineno = int(match.group(1))
        out.append(f'  File "{filename}", line {lineno}, in {match.group(2)}')
        source = linecache.getline(filename, lineno).strip()
        if source:
            out.append(f"    {source}")
    return "\n".join(out) + "\n"


def _defines(filename: str, lineno: int, function: str) -> bool:
    """Whether ``filename`` has ``function`` defined at or before ``lineno``."""
    lines = linecache.getlines(filename)
    if not 0 < lineno <= len(lines):
        return False
    if function == "<lambda>":
        return "lambda" in lines[lineno - 1]
    pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(function)}\s*\(")
    return any(pattern.match(text) for text in lines[:lineno])


def decode_error(
    body: bytes, node: int, slot: int, filename: str | None = None
) -> BaseException:
    """Rebuild a task's exception, with its remote traceback as the cause."""
    data: dict[str, Any] = cloudpickle.loads(body)
    exc: BaseException | None = None
    if data.get("exception") is not None:
        try:
            exc = cloudpickle.loads(data["exception"])
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(data["type"], data["message"], node=node)
    exc.__cause__ = RemoteTraceback(map_traceback(data["traceback"], filename))
    exc.add_note(f"(raised in a task on node {node}, slot {slot})")
    return exc


class _Session(asyncssh.SSHClientSession[bytes]):
    def __init__(self, slot: Slot):
        self._slot = slot

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._slot.on_data(data, datatype)

    def exit_status_received(self, status: int) -> None:
        self._slot.exit_status = status

    def exit_signal_received(
        self, signal: str, core_dumped: bool, msg: str, lang: str
    ) -> None:
        self._slot.exit_status = -1
        self._slot.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        self._slot.on_closed(exc)

    def pause_writing(self) -> None:
        self._slot.writable.clear()

    def resume_writing(self) -> None:
        self._slot.writable.set()


class Slot:
    """Client side of one worker process."""

    def __init__(self, cluster: Cluster, node: int, index: int):
        self.cluster = cluster
        self.node = node
        self.index = index
        self.inflight: dict[int, Task] = {}
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.command = ""
        self.alive = False
        self.pid: int | None = None
        # Set while the worker is being killed to stop these tasks.
        self.aborting: dict[int, BaseException] = {}
        self.hello: asyncio.Future[dict[str, Any]] | None = None
        self.closed: asyncio.Future[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._decoder = FrameDecoder()
        self._funcs_sent: OrderedDict[int, None] = OrderedDict()
        self._outbox: deque[bytes | memoryview] = deque()
        self._streaming = False
        self._stderr = bytearray()
        self._avg: float | None = None

    def __repr__(self) -> str:
        return (
            f"<Slot node={self.node} slot={self.index} inflight={len(self.inflight)}>"
        )

    # -- life cycle ---------------------------------------------------------

    async def start(
        self, conn: asyncssh.SSHClientConnection, command: str, init: dict[str, Any]
    ) -> dict[str, Any]:
        """Start the worker, wait for its HELLO, send INIT; return the HELLO."""
        loop = asyncio.get_running_loop()
        self.hello = loop.create_future()
        self.closed = loop.create_future()
        self.exit_status = None
        self.aborting = {}
        self._decoder = FrameDecoder()
        self._funcs_sent.clear()
        self._stderr.clear()
        try:
            chan, _ = await conn.create_session(
                lambda: _Session(self), command, encoding=None
            )
        except BaseException:
            self.hello.cancel()  # nobody will wait for it now
            # No channel was opened, so none will close: a pool closing while
            # this worker restarts must not wait for it.
            self.closed.set_result(None)
            raise
        self._chan = chan
        hello = await self.hello
        self.pid = hello.get("pid")
        body = cloudpickle.dumps(init)
        chan.write(frame_header(INIT, len(body)) + body)
        self.alive = True
        return hello

    def stderr_tail(self) -> str:
        return bytes(self._stderr[-4000:]).decode("utf-8", "replace")

    def close(self) -> None:
        self.alive = False
        if self._chan is not None:
            self._chan.close()

    # -- sending ------------------------------------------------------------

    @property
    def window(self) -> int:
        avg = self._avg
        if avg is None:
            # Until a task has finished here, nothing says tasks are short;
            # a second one queued behind a long first one would wait for it.
            return 1
        if avg < FAST_TASK:
            return FAST_WINDOW
        return 1 if avg > SLOW_TASK else 2

    @property
    def room(self) -> int:
        return self.window - len(self.inflight) if self.alive else 0

    def send(self, tasks: list[Task]) -> None:
        """Send ``tasks``; small frames are coalesced into one write."""
        small: list[bytes | memoryview] = []
        now = time.perf_counter()
        for task in tasks:
            self.inflight[task.task_id] = task
            task.sent_at = now
            ref = task.function
            if ref.func_id in self._funcs_sent:
                self._funcs_sent.move_to_end(ref.func_id)
            else:
                self._funcs_sent[ref.func_id] = None
                if len(self._funcs_sent) > FUNCTION_CACHE:
                    self._funcs_sent.popitem(last=False)
                small.append(ref.frame())
            small.append(task.head())
            small.append(task.payload)
        self._write(small)

    def _write(self, parts: list[bytes | memoryview]) -> None:
        assert self._chan is not None
        size = sum(len(p) for p in parts)
        if not self._streaming and size <= CHUNK and self.writable.is_set():
            self._chan.write(b"".join(parts))
            return
        self._outbox.extend(parts)
        if not self._streaming:
            self._streaming = True
            asyncio.get_running_loop().create_task(self._stream())

    async def _stream(self) -> None:
        """Write queued frames in bounded chunks, honouring flow control."""
        try:
            while self._outbox and self._chan is not None:
                part = memoryview(self._outbox.popleft())
                for start in range(0, len(part), CHUNK):
                    await self.writable.wait()
                    if self._chan is None or not self.alive:
                        return
                    self._chan.write(part[start : start + CHUNK])
        finally:
            self._streaming = False
            self._outbox.clear()

    # -- receiving ----------------------------------------------------------

    def on_data(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self._stderr += data
            del self._stderr[:-16000]
            return
        finished = False
        for kind, payload in self._decoder.feed(data):
            if kind == RESULT:
                self._on_result(payload)
                finished = True
            elif kind == LOG:
                (stream,) = LOG_HEAD.unpack_from(payload)
                text = bytes(payload[LOG_HEAD.size :]).decode("utf-8", "replace")
                self.cluster.on_log(
                    self, "stderr" if stream == STDERR else "stdout", text
                )
            elif kind == HELLO and self.hello is not None and not self.hello.done():
                self.hello.set_result(json.loads(payload))
        if finished:
            self.cluster.pump()

    def _on_result(self, payload: bytes | bytearray) -> None:
        task_id, ok, seconds = RESULT_HEAD.unpack_from(payload)
        task = self.inflight.pop(task_id, None)
        if task is None:
            return
        self._avg = seconds if self._avg is None else 0.7 * self._avg + 0.3 * seconds
        body = memoryview(payload)[RESULT_HEAD.size :]
        future = task.future
        try:
            if ok:
                value = cloudpickle.loads(body)
                error: BaseException | None = None
            else:
                error = decode_error(
                    bytes(body), self.node, self.index, task.function.filename
                )
        except Exception as exc:
            error = RemoteError(
                type(exc).__name__,
                f"the task's result could not be unpickled here: {exc}",
                node=self.node,
            )
        self.cluster.on_finished(self, task, seconds, error)
        if future.done():  # cancelled by the caller meanwhile
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def on_closed(self, exc: Exception | None) -> None:
        self.alive = False
        self._chan = None
        self.writable.set()
        if self.hello is not None and not self.hello.done():
            self.hello.set_exception(
                WorkerDiedError(
                    self.node, self.index, self.exit_status, self.stderr_tail()
                )
            )
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        self.cluster.on_slot_closed(self, exc)

    def fail_inflight(self, error_for: Callable[[Task], BaseException]) -> None:
        """Fail the tasks sent here; each still reports its (failed) result."""
        tasks, self.inflight = list(self.inflight.values()), {}
        now = time.perf_counter()
        for task in tasks:
            error = error_for(task)
            self.cluster.on_finished(self, task, now - task.sent_at, error)
            if not task.future.done():
                task.future.set_exception(error)


def lost_error(slot: Slot, reason: str) -> NodeLostError:
    return NodeLostError(slot.node, reason)


def closed_error() -> PoolBrokenError:
    return PoolBrokenError("the pool was shut down before this task finished")
