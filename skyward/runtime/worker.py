"""The worker loop: one process per slot, started over SSH.

    client --frames--> stdin  [worker] stdout --frames--> client
                                 |  fd 1/2 --pipe--> forwarder threads --LOG-->

The worker keeps a private duplicate of its stdout for frames and points
fds 1 and 2 at pipes, so anything a task prints (Python code, C extensions
and subprocesses alike) comes back as LOG frames instead of corrupting the
stream. Python-level prints are sent on the task's own thread, so they are
framed before the task's result.

Only the standard library and cloudpickle are imported here: this file runs
on nodes where Skyward itself is not installed.
"""

from __future__ import annotations

import io
import json
import os
import select
import sys
import threading
import time
import traceback
from collections import OrderedDict
from typing import Any, BinaryIO

import cloudpickle

from skyward.runtime import context
from skyward.runtime.protocol import (
    FUNC,
    FUNC_HEAD,
    FUNCTION_CACHE,
    HEADER,
    HELLO,
    INIT,
    LOG,
    LOG_HEAD,
    RESULT,
    RESULT_HEAD,
    STDERR,
    STDOUT,
    TASK,
    TASK_HEAD,
    frame_header,
)


class Channel:
    """Writes frames to the client; safe to use from several threads."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self._lock = threading.Lock()

    def send(self, kind: int, *parts: bytes) -> None:
        length = sum(len(p) for p in parts)
        with self._lock:
            self._out.write(frame_header(kind, length))
            for part in parts:
                self._out.write(part)
            self._out.flush()

    def log(self, stream: int, text: str) -> None:
        self.send(LOG, LOG_HEAD.pack(stream), text.encode("utf-8", "replace"))


class FrameStream(io.TextIOBase):
    """``sys.stdout`` for tasks: each complete line becomes a LOG frame."""

    def __init__(self, channel: Channel, stream: int):
        self._channel = channel
        self._stream = stream
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = self._pending + text
        cut = data.rfind("\n")
        if cut < 0:
            self._pending = data
        else:
            self._pending = data[cut + 1 :]
            self._channel.log(self._stream, data[: cut + 1])
        return len(text)

    def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._channel.log(self._stream, text)

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def _forward_fd(read_fd: int, channel: Channel, stream: int) -> None:
    """Send what lands on a redirected fd as LOG frames, a line at a time."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            return
        if not chunk:
            if pending:
                channel.log(stream, pending.decode("utf-8", "replace"))
            return
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut >= 0:
            channel.log(stream, pending[: cut + 1].decode("utf-8", "replace"))
            pending = pending[cut + 1 :]


def _watch_client(fd: int) -> None:
    """Exit at once when the client's end of stdin goes away.

    Without this, a worker busy in a long task would only notice a vanished
    client when it next reads, and could outlive its pool.
    """
    poller = select.poll()
    poller.register(fd, getattr(select, "POLLRDHUP", 0))
    while True:
        for _, events in poller.poll():
            if events & (
                select.POLLHUP
                | select.POLLERR
                | select.POLLNVAL
                | getattr(select, "POLLRDHUP", 0)
            ):
                os._exit(0)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: the stdin watch still applies
        pass


def _error_payload(exc: BaseException) -> bytes:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    data: dict[str, Any] = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": tb,
        "exception": None,
    }
    try:
        exc.__traceback__ = None
        data["exception"] = cloudpickle.dumps(exc)
    except Exception:  # the client rebuilds it as a RemoteError from the above
        pass
    return cloudpickle.dumps(data)


class Worker:
    def __init__(self, stdin: BinaryIO, channel: Channel):
        self._in = stdin
        self._channel = channel
        self._functions: OrderedDict[int, Any] = OrderedDict()

    def _read_frame(self) -> tuple[int, bytes] | None:
        head = self._in.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        length, kind = HEADER.unpack(head)
        payload = self._in.read(length)
        if len(payload) < length:
            return None
        return kind, payload

    def serve(self) -> None:
        while True:
            frame = self._read_frame()
            if frame is None:
                return
            kind, payload = frame
            if kind == TASK:
                self._run(payload)
            elif kind == FUNC:
                (func_id,) = FUNC_HEAD.unpack_from(payload)
                try:
                    self._functions[func_id] = cloudpickle.loads(
                        memoryview(payload)[FUNC_HEAD.size :]
                    )
                except BaseException as exc:  # reported when a task uses it
                    self._functions[func_id] = _Unloadable(exc)
                if len(self._functions) > FUNCTION_CACHE:
                    self._functions.popitem(last=False)
            elif kind == INIT:
                self._init(cloudpickle.loads(payload))

    def _init(self, data: dict[str, Any]) -> None:
        os.environ.update(data.get("env", {}))
        context._set(context.InstanceInfo.from_dict(data["info"]))
        workdir = data.get("workdir")
        if workdir:
            os.makedirs(workdir, exist_ok=True)
            os.chdir(workdir)
            if workdir not in sys.path:
                sys.path.insert(0, workdir)

    def _run(self, payload: bytes) -> None:
        task_id, func_id = TASK_HEAD.unpack_from(payload)
        start = time.perf_counter()
        try:
            fn = self._functions[func_id]
            self._functions.move_to_end(func_id)
            if isinstance(fn, _Unloadable):
                raise fn.error
            args, kwargs = cloudpickle.loads(memoryview(payload)[TASK_HEAD.size :])
            value = fn(*args, **kwargs)
            try:
                body = cloudpickle.dumps(value, protocol=5)
            except Exception as exc:
                raise TypeError(
                    f"the result of {getattr(fn, '__qualname__', fn)!r} "
                    f"({type(value).__name__}) cannot be pickled: {exc}"
                ) from exc
            ok = 1
        except BaseException as exc:
            if isinstance(exc, SystemExit | KeyboardInterrupt):
                exc = RuntimeError(f"task raised {type(exc).__name__}({exc})")
            body, ok = _error_payload(exc), 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        elapsed = time.perf_counter() - start
        self._channel.send(RESULT, RESULT_HEAD.pack(task_id, ok, elapsed), body)


class _Unloadable:
    def __init__(self, error: BaseException):
        self.error = error


def main() -> None:
    _die_with_parent()
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 20)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    channel = Channel(proto_out)

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, stream in ((1, STDOUT), (2, STDERR)):
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, fd)
        os.close(write_fd)
        threading.Thread(
            target=_forward_fd,
            args=(read_fd, channel, stream),
            daemon=True,
            name=f"skyward-fd{fd}",
        ).start()
    sys.stdout = FrameStream(channel, STDOUT)
    sys.stderr = FrameStream(channel, STDERR)
    threading.Thread(
        target=_watch_client,
        args=(proto_in.fileno(),),
        daemon=True,
        name="skyward-watch",
    ).start()

    hello = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cloudpickle": cloudpickle.__version__,
        "pid": os.getpid(),
        "executable": sys.executable,
    }
    channel.send(HELLO, json.dumps(hello).encode())
    Worker(proto_in, channel).serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
