"""``ComputePool``: a pool's life from validation to teardown.

1. ``ComputePool(...)`` validates its arguments into a PoolSpec.
2. ``__enter__`` provisions (the provider), connects and starts workers
   (the cluster layer), and makes the pool the active one for ``>> sky``.
3. Operators dispatch calls to its slots.
4. ``__exit__`` (normal exit, exception, Ctrl-C, SIGTERM) stops the
   workers, closes connections and tears the nodes down.

A failure at any step tears down whatever the earlier steps created.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import logging
import math
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from skyward import events
from skyward.callback import Callback, Dispatcher, active_callbacks
from skyward.cluster import Cluster, Task, Topology
from skyward.cluster.loop import get_loop
from skyward.cluster.loop import run as run_in_loop
from skyward.errors import (
    ConfigurationError,
    CostLimitExceeded,
    NoActivePoolError,
    PoolBrokenError,
    TaskAbortedError,
)
from skyward.runtime.integrations import DistributedFunction
from skyward.spec import Image, PoolSpec, ProviderConfig, build

if TYPE_CHECKING:
    from skyward.api.compute import PendingCompute
    from skyward.cluster.bootstrap import Bootstrap
    from skyward.infra.base import Provisioned, Provisioner

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_current: contextvars.ContextVar[ComputePool | None] = contextvars.ContextVar(
    "skyward_pool", default=None
)
_open: list[ComputePool] = []
_open_lock = threading.Lock()


def current_pool() -> ComputePool:
    """The pool ``>> sky`` refers to here.

    The innermost ``with`` block or ``@sky.pool`` function of this context;
    from a thread that did not inherit a context, the one open pool of the
    process when there is exactly one.
    """
    pool = _current.get()
    if pool is not None:
        return pool
    with _open_lock:
        if len(_open) == 1:
            return _open[0]
        count = len(_open)
    detail = (
        f"{count} pools are open and none is active in this context; send "
        "to one of them explicitly (`>> pool`)"
        if count
        else "no pool is open"
    )
    raise NoActivePoolError(
        f"`>> sky` and `@ sky` need an active pool, but {detail}. Open one with "
        "`with sky.ComputePool(...) as pool:` or decorate the calling function "
        "with `@sky.pool(...)`."
    )


def _default_provider() -> ProviderConfig:
    from skyward.infra.providers import Local

    return Local()


def _interval(name: str, value: float | None, *, allow_off: bool) -> float | None:
    """Validate a monitoring interval in seconds; ``None``/0 turns it off."""
    if allow_off and (value is None or value == 0):
        return None
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= MIN_INTERVAL
    )
    if not ok:
        off = "; None or 0 turns it off" if allow_off else ""
        raise ConfigurationError(
            f"`{name}` must be a number of seconds of at least {MIN_INTERVAL:g}, "
            f"not {value!r}{off}."
        )
    return float(value)  # type: ignore[arg-type]


MIN_INTERVAL = 0.1


class ComputePool:
    """A pool of nodes that runs ``@sky.compute`` calls. Use it with ``with``.

    ``nodes`` machines, each running ``concurrency`` worker slots. Arguments
    are validated here, before anything is created; see :class:`PoolSpec`.

    Watching it: ``on_event`` receives every event (see :mod:`skyward.events`);
    ``console`` is the default view (``None``: live when stdout is a terminal,
    plain lines otherwise; ``True``: live; ``False``: nothing).
    ``metrics_interval`` is how often each node samples CPU, memory and GPU
    use (seconds; ``None`` or 0: never); samples are taken only when some
    callback or the live console listens. ``cost_interval`` is how often a
    ``CostUpdate`` is sent. ``max_cost`` (dollars) stops the pool when its
    running cost reaches it: see :class:`~skyward.errors.CostLimitExceeded`.
    """

    def __init__(
        self,
        provider: ProviderConfig | None = None,
        nodes: int = 1,
        concurrency: int = 1,
        cpu: int | None = None,
        memory: str | int | None = None,
        accelerator: Any = None,
        image: Image | None = None,
        allocation: str = "spot-if-available",
        name: str | None = None,
        volume: Any = None,
        on_event: Callback | None = None,
        console: bool | None = None,
        max_cost: float | None = None,
        metrics_interval: float | None = 2.0,
        cost_interval: float = 10.0,
        idle_timeout: float = 300.0,
        ttl: float | None = None,
        update: bool = False,
        keep: bool | None = None,
    ):
        self.spec: PoolSpec = build(
            PoolSpec,
            "pool",
            provider=provider if provider is not None else _default_provider(),
            nodes=nodes,
            concurrency=concurrency,
            cpu=cpu,
            memory=memory,
            accelerator=accelerator,
            image=image,
            allocation=allocation,
            name=name,
            volumes=volume,
            max_cost=max_cost,
            idle_timeout=idle_timeout,
            ttl=ttl,
        )
        self.spec.provider.check(self.spec)
        if console is not None and not isinstance(console, bool):
            raise ConfigurationError(
                f"`console` must be True (live view), False (silent) or None "
                f"(live on a terminal, plain lines otherwise), not {console!r}."
            )
        if on_event is not None and not callable(on_event):
            raise ConfigurationError(
                f"`on_event` must be a callable taking one event, not {on_event!r}."
            )
        self.metrics_interval = _interval(
            "metrics_interval", metrics_interval, allow_off=True
        )
        self.cost_interval = _interval("cost_interval", cost_interval, allow_off=False)
        self.name = name or f"pool-{secrets.token_hex(3)}"
        self.update = update
        self.keep = keep
        self.console = console
        self._on_event = on_event
        self._watched = False
        self._dispatch = Dispatcher([])
        self._added: list[Callback] = []
        self._provisioner: Provisioner | None = None
        self._bootstrap: Bootstrap | None = None
        self._provisioned: Provisioned | None = None
        self._cluster: Cluster | None = None
        self._tokens: list[contextvars.Token[ComputePool | None]] = []
        self._started_at = 0.0
        self._ready_at = 0.0
        self._stopped_at: float | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._stop_error: CostLimitExceeded | None = None
        self._cost_watch: asyncio.Task[None] | None = None
        self._sigterm: Any = None
        self._closed = False

    # -- properties ---------------------------------------------------------

    @property
    def nodes(self) -> int:
        return self.spec.nodes

    @property
    def concurrency(self) -> int:
        return self.spec.concurrency

    @property
    def total_slots(self) -> int:
        return self.spec.total_slots

    @property
    def is_open(self) -> bool:
        return self._cluster is not None and not self._closed

    @property
    def is_broken(self) -> bool:
        """True once every node has been lost: no slot can run tasks any more."""
        cluster = self._cluster
        return cluster is not None and all(node.lost for node in cluster.nodes)

    @property
    def hourly_rate(self) -> float:
        """Dollars per hour for the nodes as provisioned (spot or on-demand)."""
        provisioned = self._provisioned
        if provisioned is None:
            return 0.0
        if provisioned.hourly_rate:
            return provisioned.hourly_rate
        return sum(i.hourly_price for i in provisioned.instances)

    @property
    def total_cost(self) -> float:
        """Dollars spent so far: the hourly rate over the time since ``open``."""
        if not self._started_at:
            return 0.0
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return self.hourly_rate * (end - self._started_at) / 3600

    @property
    def provisioned(self) -> Provisioned | None:
        return self._provisioned

    def emit(self, event: events.SkywardEvent) -> None:
        self._dispatch(event)

    def add_callback(self, callback: Callback) -> None:
        """Send this pool's events to ``callback`` too, from now on."""
        self._added.append(callback)
        self._dispatch.add(callback)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return (
            f"<ComputePool {self.name} {self.spec.provider.kind} "
            f"nodes={self.nodes} concurrency={self.concurrency} {state}>"
        )

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> ComputePool:
        self.open()
        self._tokens.append(_current.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            _current.reset(self._tokens.pop())
        # Re-entering an open pool only makes it active again inside that
        # block; the outermost block owns the pool's life.
        if not self._tokens:
            self.close(error=exc)

    def _callbacks(self) -> list[Callback]:
        """The console, ``use_callback`` blocks, ``on_event``, ``add_callback``.

        Sets ``_watched``: whether anything wants per-task events and node
        metrics, which cost a little on every dispatch; the plain console
        does not.
        """
        from skyward.console import default_console

        chosen: list[Callback] = []
        console = default_console(self)
        if console is not None:
            chosen.append(console)
        listeners = [*active_callbacks()]
        if self._on_event is not None:
            listeners.append(self._on_event)
        listeners.extend(self._added)
        chosen.extend(listeners)
        self._watched = bool(listeners) or getattr(console, "watches", False)
        return chosen

    def open(self) -> ComputePool:
        """Provision the nodes and start the workers; idempotent."""
        if self._already_open():
            return self
        self._prepare_open()
        try:
            run_in_loop(self.open_async())
        except BaseException:
            self._restore_sigterm()
            raise
        return self

    def _already_open(self) -> bool:
        if self._cluster is None:
            return False
        if self._closed:
            raise PoolBrokenError(f"pool {self.name} was closed; open a new one")
        return True

    def _prepare_open(self) -> None:
        """The part of opening that belongs to the caller's thread.

        Event callbacks come from the caller's context (``use_callback``),
        and a SIGTERM handler can only be installed from the main thread.
        """
        self._dispatch = Dispatcher(self._callbacks())
        self._install_sigterm()
        self._started_at = time.monotonic()

    async def open_async(self) -> ComputePool:
        """:meth:`open` on Skyward's loop, so several pools can open at once.

        Call ``_prepare_open()`` from the caller's thread first, as
        :meth:`open` and :class:`~skyward.MultiPool` do.
        """
        if self._already_open():
            return self
        await self._open()
        with _open_lock:
            _open.append(self)
        return self

    async def _open(self) -> None:
        spec = self.spec
        self.emit(
            events.ProvisioningStarted(
                pool=self.name, provider=spec.provider.kind, nodes=spec.nodes
            )
        )
        from skyward.infra.base import Provider

        if not isinstance(spec.provider, Provider):
            raise TypeError(f"{type(spec.provider).__name__} cannot provision pools")
        from skyward.cluster.bootstrap import Bootstrap
        from skyward.infra.base import PoolOptions

        # Planned before provisioning: a bad Image fails with nothing created.
        bootstrap = Bootstrap.for_spec(
            spec, self.name, self.emit, local=spec.provider.on_this_machine
        )
        self._bootstrap = bootstrap
        options = PoolOptions(update=self.update, keep=self.keep)
        provisioner = spec.provider.provisioner(spec, self.name, self.emit, options)
        self._provisioner = provisioner
        cluster: Cluster | None = None
        try:
            provisioned = await provisioner.provision()
            self._provisioned = provisioned
            accel = spec.accelerator
            topology = Topology(
                pool=self.name,
                concurrency=spec.concurrency,
                head_port=provisioned.head_port,
                env=dict(spec.image.env),
                accelerator=accel.name if accel else None,
                accelerator_count=accel.count if accel else 0,
                accelerator_memory_gb=accel.memory_gb if accel else 0.0,
            )
            cluster = Cluster(provisioned.endpoints, topology, self.emit)
            cluster.watch_tasks = self._watched
            cluster.prepare = bootstrap.prepare
            await cluster.start()
        except BaseException as exc:
            try:
                try:
                    if cluster is not None:
                        await cluster.close(timeout=2)
                finally:
                    try:
                        await bootstrap.release()
                    finally:
                        await provisioner.teardown()
            finally:
                self._provisioner = None
                self._stopped_at = time.monotonic()
                self._emit_stopped(exc)
            raise
        self._cluster = cluster
        self._ready_at = time.monotonic()
        if self._watched and self.metrics_interval is not None:
            cluster.start_metrics(self.metrics_interval)
        unpriced = not self.hourly_rate and spec.provider.kind != "local"
        if spec.max_cost is not None and unpriced:
            log.warning(
                "Pool %s has max_cost=$%.2f, but its provider reported no price "
                "for its nodes, so the limit cannot be enforced",
                self.name,
                spec.max_cost,
            )
        self._cost_watch = asyncio.get_running_loop().create_task(
            self._watch_cost(), name=f"cost-{self.name}"
        )
        self.emit(
            events.PoolReady(
                pool=self.name,
                nodes=spec.nodes,
                slots=spec.total_slots,
                seconds=self._ready_at - self._started_at,
            )
        )
        log.info(
            "Pool %s ready: %d nodes x %d slots in %.2f s",
            self.name,
            spec.nodes,
            spec.concurrency,
            self._ready_at - self._started_at,
        )

    def close(self, error: BaseException | None = None) -> None:
        """Stop workers, close connections, tear the nodes down; idempotent."""
        if self._closed or self._provisioner is None:
            self._closed = True
            return
        try:
            run_in_loop(self.close_async(error))
        finally:
            self._restore_sigterm()

    async def close_async(self, error: BaseException | None = None) -> None:
        """:meth:`close` on Skyward's loop, so several pools can close at once."""
        if self._closed or self._provisioner is None:
            self._closed = True
            return
        self._closed = True
        with _open_lock:
            if self in _open:
                _open.remove(self)
        await self._close(error)

    async def _close(self, error: BaseException | None) -> None:
        if self._cost_watch is not None:
            self._cost_watch.cancel()
        try:
            await self._stop()
        finally:
            self._emit_stopped(error if error is not None else self._stop_error)

    def _stop(self, error: BaseException | None = None) -> asyncio.Task[None]:
        """Stop the workers and tear the nodes down, once; await the result.

        ``error`` is what queued and running tasks fail with.
        """
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(
                self._teardown(error), name=f"stop-{self.name}"
            )
        return self._stopping

    async def _teardown(self, error: BaseException | None) -> None:
        try:
            if self._cluster is not None:
                await self._cluster.close(error=error)
        finally:
            try:
                if self._bootstrap is not None:
                    await self._bootstrap.release()
                if self._provisioner is not None:
                    await self._provisioner.teardown()
            finally:
                self._stopped_at = time.monotonic()

    def _emit_stopped(self, error: BaseException | None) -> None:
        """``PoolStopped``, then ``CostFinal``: always the pool's last event."""
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        seconds = end - self._started_at
        rate = self.hourly_rate
        self.emit(
            events.PoolStopped(
                pool=self.name,
                seconds=seconds,
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
        )
        self.emit(
            events.CostFinal(
                pool=self.name,
                total_cost=rate * seconds / 3600,
                duration_seconds=seconds,
                hourly_rate=rate,
            )
        )

    async def _watch_cost(self) -> None:
        """Send ``CostUpdate`` every ``cost_interval``; enforce ``max_cost``.

        With a limit, it also wakes at the moment the running cost reaches
        it, so the pool stops on time rather than at the next update.
        """
        rate = self.hourly_rate
        limit = self.spec.max_cost
        interval = self.cost_interval or 10.0
        next_update = time.monotonic() + interval
        while True:
            wake = next_update
            if limit is not None and rate > 0:
                wake = min(wake, self._started_at + limit / rate * 3600)
            await asyncio.sleep(max(0.0, wake - time.monotonic()))
            cost = self.total_cost
            if limit is not None and rate > 0 and cost >= limit:
                self._exceeded(limit, cost, rate)
                return
            now = time.monotonic()
            if now >= next_update:
                self.emit(
                    events.CostUpdate(
                        pool=self.name,
                        hourly_rate=rate,
                        total_cost=cost,
                        elapsed_seconds=now - self._started_at,
                    )
                )
                next_update += interval

    def _exceeded(self, limit: float, cost: float, rate: float) -> None:
        error = CostLimitExceeded(self.name, limit, cost, rate)
        self._stop_error = error
        log.warning(
            "Pool %s reached max_cost $%.4f (spent $%.4f at $%.2f/h); stopping it",
            self.name,
            limit,
            cost,
            rate,
        )
        self._stop(error)

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit so ``__exit__`` tears the pool down."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        self._sigterm = on_sigterm

    def _restore_sigterm(self) -> None:
        if (
            self._sigterm is not None
            and signal.getsignal(signal.SIGTERM) is self._sigterm
        ):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._sigterm = None

    # -- running ------------------------------------------------------------

    def _require_cluster(self) -> Cluster:
        if self._stop_error is not None:
            raise copy.copy(self._stop_error)
        if self._cluster is None or self._closed:
            raise PoolBrokenError(
                f"pool {self.name} is not open; use it inside `with ComputePool(...)`"
            )
        return self._cluster

    def submit_tasks(self, tasks: list[Task]) -> list[Future[Any]]:
        """Hand prepared tasks to the pool; their futures complete as they run."""
        self._require_cluster().submit_threadsafe(tasks)
        return [t.future for t in tasks]

    def _task(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Task:
        """One call of ``fn`` (a plain or a compute function) on one slot."""
        from skyward.api.compute import ship_by_value

        fn = getattr(fn, "fn", fn)
        self._refuse_distributed(fn)
        ship_by_value(fn)
        return Task.create(fn, args, kwargs)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Run ``fn(*args, **kwargs)`` on one slot; return a future at once."""
        return self.submit_tasks([self._task(fn, args, kwargs)])[0]

    def _refuse_distributed(self, fn: Any) -> None:
        """A distributed function on one slot of several nodes would hang.

        Its rank would wait at the rendezvous for ranks on the other nodes
        that never start, so it is refused before anything is sent.
        """
        if self.nodes > 1 and isinstance(fn, DistributedFunction):
            name = getattr(fn, "__qualname__", "the function")
            raise ConfigurationError(
                f"{name}() is decorated with a sky.integrations decorator, which "
                f"makes the {self.nodes} nodes of the pool one distributed job, "
                f"so it must run once on every node: broadcast it with "
                f"`{name}(...) @ pool` instead of sending it to one slot with "
                "`>>`, gather() or submit()."
            )

    def run(self, pending: PendingCompute[R]) -> R:
        task = self._task(pending.fn, pending.args, pending.kwargs)
        return self.submit_tasks([task])[0].result()

    def broadcast(self, pending: PendingCompute[R]) -> tuple[R, ...]:
        """Run once on every node; the results, or the first node's error.

        The parts of a broadcast stand or fall together: when one fails, the
        others are aborted (their workers killed and restarted) instead of
        being left to hang in a collective waiting for it, and the caller
        gets the failed node's exception.
        """
        cluster = self._require_cluster()
        task = Task.create(pending.fn, pending.args, pending.kwargs)
        tasks = [task.pinned(node.index) for node in cluster.nodes]
        failed: list[BaseException] = []
        lock = threading.Lock()

        def on_done(part: Task, future: Future[Any]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is None or isinstance(error, TaskAbortedError):
                return
            with lock:
                if failed:
                    return
                failed.append(error)
            rest = [t for t in tasks if t is not part]
            reason = (
                f"node {part.node}'s part of the broadcast of {task.function.name} "
                f"failed with {type(error).__name__}: {error}"
            )
            get_loop().call_soon_threadsafe(cluster.abort, rest, reason)

        futures = self.submit_tasks(tasks)
        for part, future in zip(tasks, futures, strict=True):
            future.add_done_callback(functools.partial(on_done, part))
        try:
            return tuple(_results(futures))
        except BaseException:
            if failed:
                # The failed node's error, not a sibling's abort; keep its
                # remote traceback as the cause.
                raise failed[0] from failed[0].__cause__
            raise

    def run_many(self, items: Sequence[PendingCompute[Any]]) -> tuple[Any, ...]:
        tasks = [self._task(p.fn, p.args, p.kwargs) for p in items]
        if not tasks:
            return ()
        return tuple(_results(self.submit_tasks(tasks)))

    def map(self, fn: Callable[..., R], *iterables: Iterable[Any]) -> list[R]:
        """``[fn(*args) for args in zip(*iterables)]``, run on the pool."""
        tasks = [self._task(fn, args, {}) for args in zip(*iterables, strict=False)]
        return list(_results(self.submit_tasks(tasks)))


def _results(futures: list[Future[Any]]) -> list[Any]:
    """Wait for every future, then return results or raise the first error.

    Waiting for all first means no task of the group is still running on the
    pool when the caller sees the error.
    """
    try:
        for fut in futures:
            fut.exception()
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    return [fut.result() for fut in futures]


def pool(
    provider: ProviderConfig | None = None, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function to run it inside a fresh pool (``>> sky`` works there)."""
    ComputePool(provider=provider, **options)  # validate now, at decoration time

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with ComputePool(provider=provider, **options):
                return fn(*args, **kwargs)

        return wrapper

    return decorate
