"""One background event loop per process, and the bridge to it.

Skyward's core is asynchronous (asyncssh); its surface is synchronous. Every
pool in a process shares this loop, running on a daemon thread, and
synchronous calls hand work to it with :func:`run`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=serve, name="skyward-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and wait for it from this thread.

    An interrupt (Ctrl-C) while waiting cancels the coroutine before it
    propagates, so no half-done work keeps running behind the caller's back.
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError(
            "a blocking Skyward call was made from inside Skyward's event loop "
            "(from an event callback, say); hand it to another thread instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise
