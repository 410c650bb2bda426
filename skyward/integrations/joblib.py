"""A pool as joblib's parallel backend: ``JoblibPool`` and ``ScikitLearnPool``.

    with sky.integrations.JoblibPool(provider=sky.Local(), nodes=2):
        Parallel(n_jobs=-1)(delayed(f)(i) for i in range(1000))

Inside the block, every ``joblib.Parallel`` (and so every scikit-learn
estimator with ``n_jobs``) sends its batches to the pool's slots. joblib's
automatic batching groups tiny calls until a batch takes a noticeable time,
so a thousand trivial calls cost a few dozen round trips, not a thousand.

``n_jobs=-1`` means every slot; ``-2`` all but one, as joblib counts CPUs; a
positive ``n_jobs`` caps how many batches run at once; ``0`` is refused, as
joblib refuses it.
"""

from __future__ import annotations

import contextvars
import operator
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from joblib import parallel_config, register_parallel_backend
from joblib.parallel import AutoBatchingMixin, ParallelBackendBase

from skyward.api.compute import ship_by_value
from skyward.api.pool import ComputePool
from skyward.cluster import Task
from skyward.errors import NoActivePoolError, SerializationError

BACKEND_NAME = "skyward"

_active: contextvars.ContextVar[ComputePool | None] = contextvars.ContextVar(
    "skyward_joblib_pool", default=None
)
_callbacks_lock = threading.Lock()
_callbacks: ThreadPoolExecutor | None = None


def _callback_thread() -> ThreadPoolExecutor:
    """The thread joblib's completion callbacks run on.

    Futures complete on Skyward's event loop; joblib's callback dispatches
    the next batch, which runs the caller's generator and pickles arguments.
    That work belongs off the loop, which must keep reading results.
    """
    global _callbacks
    with _callbacks_lock:
        if _callbacks is None:
            _callbacks = ThreadPoolExecutor(1, thread_name_prefix="skyward-joblib")
        return _callbacks


def _hand_off(callback: Callable[[Future[Any]], Any], future: Future[Any]) -> None:
    try:
        _callback_thread().submit(callback, future)
    except RuntimeError:  # the interpreter is shutting down: run it here
        callback(future)


class SkywardBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib backend that runs each batch as one task on a pool's slots."""

    supports_retrieve_callback = True
    default_n_jobs = -1

    def __init__(
        self,
        pool: ComputePool | None = None,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **backend_kwargs: Any,
    ):
        super().__init__(
            nesting_level=nesting_level,
            inner_max_num_threads=inner_max_num_threads,
            **backend_kwargs,
        )
        if pool is None:
            pool = _active.get()
        if pool is None:
            raise NoActivePoolError(
                f"joblib's {BACKEND_NAME!r} backend runs on a pool; use it inside "
                "`with sky.integrations.JoblibPool(...):`"
            )
        self.pool = pool
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._running = 0
        self._waiting: deque[Task] = deque()
        self._outstanding: set[Future[Any]] = set()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many batches run at once: ``n_jobs`` counted against the slots.

        Never 1 unless ``n_jobs`` is 1: joblib runs a one-job ``Parallel``
        here, in this process, and a pool of one slot is still the place the
        user asked the work to go.
        """
        if n_jobs is None:
            return 1
        concurrent = self._concurrent(n_jobs)
        return concurrent if concurrent > 1 or n_jobs == 1 else 2

    def _concurrent(self, n_jobs: int) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        slots = self.pool.total_slots
        if n_jobs < 0:
            return max(slots + 1 + n_jobs, 1)
        return min(n_jobs, slots)

    def configure(
        self,
        n_jobs: int = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        **backend_kwargs: Any,
    ) -> int:
        effective = self.effective_n_jobs(n_jobs)
        concurrent = self._concurrent(n_jobs)
        self.parallel = parallel
        self._limit = concurrent if concurrent < self.pool.total_slots else None
        return effective

    def submit(
        self, func: Callable[[], Any], callback: Callable[[Any], Any] | None = None
    ) -> Future[Any]:
        """Send one joblib batch as one task; ``callback`` runs when it is done."""
        for fn, _, _ in getattr(func, "items", ()):
            ship_by_value(fn)
        try:
            task = Task.create(operator.call, (func,), {})
        except SerializationError as exc:
            raise SerializationError(
                f"A joblib batch cannot be pickled to send it to pool "
                f"{self.pool.name}: {exc.__cause__ or exc}. Pass data the "
                "function can rebuild (a path, a config) instead."
            ) from exc
        future = task.future
        with self._lock:
            self._outstanding.add(future)
        future.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(lambda done: _hand_off(callback, done))
        self._send(task)
        return future

    def retrieve_result_callback(self, future: Future[Any]) -> Any:
        return future.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel every batch no slot has taken; running ones finish unseen."""
        with self._lock:
            self._waiting.clear()
            outstanding = list(self._outstanding)
        for future in outstanding:
            future.cancel()

    def terminate(self) -> None:
        self.abort_everything()
        self.reset_batch_stats()

    # -- the n_jobs cap -----------------------------------------------------

    def _send(self, task: Task) -> None:
        with self._lock:
            if self._limit is not None and self._running >= self._limit:
                self._waiting.append(task)
                return
            self._running += 1
        self._dispatch(task)

    def _dispatch(self, task: Task) -> None:
        task.future.add_done_callback(self._release)
        self.pool.submit_tasks([task])

    def _release(self, future: Future[Any]) -> None:
        following: Task | None = None
        with self._lock:
            self._running -= 1
            while self._waiting:
                candidate = self._waiting.popleft()
                if not candidate.future.cancelled():
                    following = candidate
                    self._running += 1
                    break
        if following is not None:
            self._dispatch(following)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._outstanding.discard(future)


# ``Parallel(backend="skyward")`` works inside a JoblibPool block, and says
# what is missing outside one.
register_parallel_backend(BACKEND_NAME, SkywardBackend)


class JoblibPool(ComputePool):
    """A :class:`~skyward.ComputePool` that is joblib's backend inside ``with``.

    Takes the arguments of ``ComputePool``. ``n_jobs``, when given, is the
    default for ``Parallel`` calls in the block (as ``parallel_config``).
    """

    def __init__(self, *args: Any, n_jobs: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.n_jobs = n_jobs
        self._configs: list[tuple[Any, contextvars.Token[ComputePool | None]]] = []

    def __enter__(self) -> JoblibPool:
        super().__enter__()
        try:
            options = {} if self.n_jobs is None else {"n_jobs": self.n_jobs}
            config = parallel_config(backend=SkywardBackend(self), **options)
            config.__enter__()
        except BaseException as exc:
            super().__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._configs.append((config, _active.set(self)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._configs:
                config, token = self._configs.pop()
                _active.reset(token)
                config.__exit__(exc_type, exc, tb)
        finally:
            super().__exit__(exc_type, exc, tb)


class ScikitLearnPool(JoblibPool):
    """A :class:`JoblibPool` for scikit-learn's ``n_jobs`` (``GridSearchCV``...).

    scikit-learn parallelises through joblib, so its estimators and searches
    run on the pool inside ``with``. Fails early when scikit-learn is missing.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        try:
            import sklearn  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "ScikitLearnPool needs scikit-learn on this machine: "
                "`pip install scikit-learn` (or `pip install skyward[joblib]`)."
            ) from exc
        super().__init__(*args, **kwargs)


__all__ = ["BACKEND_NAME", "JoblibPool", "ScikitLearnPool", "SkywardBackend"]
