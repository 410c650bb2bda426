"""``sky.Executor``: a pool behind the ``concurrent.futures.Executor`` interface.

Code written for ``ThreadPoolExecutor`` or ``ProcessPoolExecutor`` fans out
to a pool by changing the line that creates the executor::

    with sky.Executor(provider=sky.Local(), nodes=2, concurrency=2) as ex:
        futures = [ex.submit(f, i) for i in range(10)]
        results = list(ex.map(f, range(10), chunksize=4))

Futures are ordinary ``concurrent.futures.Future`` objects, completed by the
pool's event loop, so ``as_completed`` and ``wait`` work on them. They follow
the standard library's rules: a future cancelled before a slot took it never
runs; a task's exception comes back as itself; ``map`` cancels what is left
when its iterator stops early or times out; once every node is lost the
executor is broken (:class:`~skyward.errors.PoolBrokenError`, a
``BrokenExecutor``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent import futures as cf
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from skyward.api.compute import ComputeFunction, ship_by_value
from skyward.api.pool import ComputePool
from skyward.cluster import Task
from skyward.errors import PoolBrokenError, SerializationError
from skyward.runtime.batch import Chunk
from skyward.spec import ProviderConfig

log = logging.getLogger(__name__)

R = TypeVar("R")


class Executor(cf.Executor):
    """A ``concurrent.futures.Executor`` whose workers are a pool's slots.

    Takes the arguments of :class:`~skyward.ComputePool`. The pool is
    provisioned by ``with`` (or by the first ``submit``) and torn down by
    :meth:`shutdown`; ``compute_pool`` is the pool itself, so
    ``f(x) >> executor`` works as ``f(x) >> pool`` does.
    """

    def __init__(
        self,
        provider: ProviderConfig | None = None,
        nodes: int = 1,
        concurrency: int = 1,
        **pool_options: Any,
    ):
        self.compute_pool = ComputePool(
            provider=provider, nodes=nodes, concurrency=concurrency, **pool_options
        )
        self._lock = threading.Lock()  # state and opening
        self._pending_lock = threading.Lock()  # taken from the pool's loop
        self._pending: set[Future[Any]] = set()
        self._shutdown = False
        self._broken: BaseException | None = None
        self._closing = False
        self._closed = threading.Event()

    @property
    def total_slots(self) -> int:
        """How many calls run at once: ``nodes * concurrency``."""
        return self.compute_pool.total_slots

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return f"<skyward.Executor {self.compute_pool.name} {state}>"

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> Executor:
        with self._lock:
            self._check_usable()
            try:
                self.compute_pool.__enter__()
            except BaseException as exc:
                self._broken = exc
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.shutdown(wait=True)
        finally:
            # Resets ``>> sky`` to what it was before ``with``; the pool
            # itself is already closed unless waiting was interrupted.
            self.compute_pool.__exit__(exc_type, exc, tb)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work, then tear the pool down once running work is done.

        ``cancel_futures`` cancels every future no slot has taken yet. With
        ``wait=False`` this returns at once and the pool closes in the
        background when the last running task finishes.
        """
        with self._lock:
            self._shutdown = True
            first = not self._closing
            self._closing = True
        if cancel_futures:
            with self._pending_lock:
                pending = list(self._pending)
            for future in pending:
                future.cancel()
        if first and wait:
            self._close_when_idle()
        elif first:
            threading.Thread(
                target=self._close_in_background, name="skyward-executor-shutdown"
            ).start()
        elif wait:
            self._closed.wait()

    def _close_when_idle(self) -> None:
        try:
            while True:
                with self._pending_lock:
                    pending = list(self._pending)
                if not pending:
                    break
                cf.wait(pending)
            self.compute_pool.close()
        finally:
            self._closed.set()

    def _close_in_background(self) -> None:
        try:
            self._close_when_idle()
        except Exception:
            log.exception("Could not close pool %s", self.compute_pool.name)

    def _check_usable(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self._broken is not None:
            raise PoolBrokenError(
                f"The executor's pool {self.compute_pool.name} could not be "
                f"provisioned ({type(self._broken).__name__}: {self._broken}); "
                "create a new Executor."
            ) from self._broken
        if self.compute_pool.is_broken:
            raise PoolBrokenError(
                f"Every node of the executor's pool {self.compute_pool.name} has "
                "been lost, so no task can run; create a new Executor."
            )

    def _ensure_open(self) -> ComputePool:
        """Open the pool on first use when the executor is not used with ``with``."""
        pool = self.compute_pool
        if not pool.is_open:
            try:
                pool.open()
            except BaseException as exc:
                self._broken = exc
                raise
        return pool

    # -- submitting ---------------------------------------------------------

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` on a slot and return its future."""
        return self._submit(fn, [(args, kwargs)])[0]

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """``fn`` over the iterables, results in order, as the standard library.

        Every call is submitted now. ``timeout`` counts from this call; when
        it passes, or the iterator is closed early, or a call raises, the
        calls not yet started are cancelled. ``chunksize`` sends that many
        calls as one task, so tiny calls do not each cost a round trip.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else timeout + time.monotonic()
        calls = zip(*iterables, strict=False)
        if chunksize == 1:
            futures = self._submit(fn, [(args, {}) for args in calls])
            return _ordered(futures, deadline)
        chunk = Chunk(_unwrap(fn))
        ship_by_value(chunk.function)
        batches: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            ((batch,), {}) for batch in _batched(calls, chunksize)
        ]
        return _flattened(_ordered(self._submit(chunk, batches), deadline))

    def _submit(
        self,
        fn: Callable[..., Any],
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    ) -> list[Future[Any]]:
        fn = _unwrap(fn)
        with self._lock:
            self._check_usable()
            pool = self._ensure_open()
        ship_by_value(fn)
        tasks: list[Task] = []
        futures: list[Future[Any]] = []
        for args, kwargs in calls:
            try:
                task = Task.create(fn, args, kwargs)
            except SerializationError as exc:
                # As in ProcessPoolExecutor: a call that cannot travel fails
                # its own future, not the calls submitted with it.
                failed: Future[Any] = Future()
                failed.set_exception(exc)
                futures.append(failed)
                continue
            tasks.append(task)
            futures.append(task.future)
        with self._lock:
            self._check_usable()  # shut down while the calls were pickled
            with self._pending_lock:
                self._pending.update(task.future for task in tasks)
            for task in tasks:
                task.future.add_done_callback(self._forget)
            if tasks:
                pool.submit_tasks(tasks)
        return futures

    def _forget(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)


def _unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A ``@sky.compute`` function runs as the function it decorates."""
    return fn.fn if isinstance(fn, ComputeFunction) else fn


def _batched(calls: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[Any]]:
    iterator = iter(calls)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _ordered(
    futures: list[Future[Any]], deadline: float | None
) -> Generator[Any, None, None]:
    """Results in submission order; cancel what is left on any way out."""
    futures.reverse()
    try:
        while futures:
            future = futures.pop()
            try:
                if deadline is None:
                    yield future.result()
                else:
                    yield future.result(deadline - time.monotonic())
            finally:
                future.cancel()
    finally:
        for future in futures:
            future.cancel()


def _flattened(chunks: Generator[list[Any], None, None]) -> Iterator[Any]:
    try:
        for chunk in chunks:
            yield from chunk
    finally:
        chunks.close()
