"""What a person sees of a pool by default.

``console=None`` (the default) picks by where output goes: a live view on a
terminal, plain lines otherwise (CI, a pipe, a file). ``console=True`` asks
for the live view, ``console=False`` for nothing at all.

Either way a task's prints come back prefixed with their node,
``[node 0] text``, on the stream the task wrote them to. The plain console
writes one line per lifecycle event to stderr, so a program's own stdout
stays its own::

    skyward: pool pool-3fa2c1 provisioning 2 nodes on local
    skyward: pool pool-3fa2c1 node 0 up: i-0abc at 3.91.20.7 (g4dn.xlarge, spot)
    skyward: pool pool-3fa2c1 ready: 2 nodes x 1 slot in 0.6s
    skyward: pool pool-3fa2c1 stopped after 3.1s; cost $0.00

Bootstrap steps that take a second or more get a line of their own, and a
failed step or a lost node always does.

The live view (rich) shows a progress bar per phase, a row per node with
its current step and its CPU, memory and GPU use, tasks running and done,
and the running cost. Events arrive on Skyward's event loop thread; the
view only records them there, and rich redraws it on its own thread.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from skyward import events
from skyward.callback import Callback
from skyward.cluster.cluster import STEP_WORKERS

if TYPE_CHECKING:
    from skyward.api.pool import ComputePool

# A node is up once the cluster has started its workers.
LAST_STEP = STEP_WORKERS
SLOW_STEP = 1.0


def money(dollars: float) -> str:
    if dollars == 0:
        return "$0.00"
    return f"${dollars:.2f}" if dollars >= 1 else f"${dollars:.4f}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def default_console(pool: ComputePool) -> Callback | None:
    """The console a pool gets for its ``console`` setting."""
    if pool.console is False:
        return None
    if pool.console is True or _is_terminal():
        return LiveConsole(pool=pool)
    return PlainConsole()


def _is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _write(stream_name: str, text: str) -> None:
    # Looked up on every write: test runners and rich swap sys.stdout.
    stream = sys.stderr if stream_name == "stderr" else sys.stdout
    stream.write(text)
    stream.flush()


class PlainConsole:
    """One line per lifecycle event, task prints with their node prefix."""

    watches = False

    def __init__(self) -> None:
        self._error: dict[str, str] = {}

    def __call__(self, event: events.SkywardEvent) -> None:
        if isinstance(event, events.LogLine):
            _write(event.stream, f"[node {event.node}] {event.line}\n")
            return
        line = self.describe(event)
        if line is not None:
            _write("stderr", f"skyward: pool {event.pool} {line}\n")

    def describe(self, event: events.SkywardEvent) -> str | None:
        match event:
            case events.ProvisioningStarted(nodes=nodes, provider=provider):
                return f"provisioning {plural(nodes, 'node')} on {provider}"
            case events.InstanceProvisioned(instance=inst):
                where = f"node {inst.node} up: {inst.instance_id} at {inst.ip}"
                if not (inst.instance_type or inst.hourly_price):
                    return where  # a local process: no machine type, no price
                kind = "spot" if inst.spot else "on-demand"
                price = f"{money(inst.hourly_price)}/h" if inst.hourly_price else ""
                details = ", ".join(p for p in (inst.instance_type, kind, price) if p)
                return f"{where} ({details})"
            case events.BootstrapProgress(status="failed", node=node, step=step):
                return f"node {node} failed at {step} after {event.elapsed:.1f}s"
            case events.BootstrapProgress(status="done", node=node, step=step) if (
                event.elapsed >= SLOW_STEP
            ):
                return f"node {node} {step}: done in {event.elapsed:.1f}s"
            case events.PoolReady(nodes=nodes, slots=slots, seconds=seconds):
                per_node = slots // nodes if nodes else slots
                return (
                    f"ready: {plural(nodes, 'node')} x {plural(per_node, 'slot')} "
                    f"in {seconds:.1f}s"
                )
            case events.NodeLost(node=node, reason=reason):
                return f"node {node} lost: {reason}"
            case events.PoolStopped(error=error) if error:
                self._error[event.pool] = error.splitlines()[0]
                return None
            case events.CostFinal(total_cost=cost, duration_seconds=seconds):
                error = self._error.pop(event.pool, None)
                why = f" ({error})" if error else ""
                return f"stopped after {seconds:.1f}s{why}; cost {money(cost)}"
        return None


@dataclass
class _NodeRow:
    status: str = "provisioning"
    cpu: float | None = None
    memory: float | None = None
    gpu: float | None = None
    gpu_memory: float | None = None
    running: int = 0
    done: int = 0


class LiveConsole:
    """A live view of one pool, drawn by rich while the pool is open.

    ``console`` is the rich console to draw on (default: the terminal).
    Several pools open at once share one live display on the same console.
    """

    watches = True

    def __init__(self, pool: ComputePool | None = None, console: Console | None = None):
        self.pool = pool
        self.console = console or Console()
        self._lock = threading.Lock()
        self._name = pool.name if pool is not None else ""
        self._provider = pool.spec.provider.kind if pool is not None else ""
        self._slots = pool.concurrency if pool is not None else 0
        self._nodes: dict[int, _NodeRow] = {}
        self._done = 0
        self._failed = 0
        self._rate = 0.0
        self._cost = 0.0
        self._state = "starting"
        self._phases = Progress(
            TextColumn("{task.description:<13}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._provision: TaskID | None = None
        self._bootstrap: TaskID | None = None
        self._booted: set[int] = set()
        self._board: _Board | None = None

    # -- events (loop thread) -------------------------------------------------

    def __call__(self, event: events.SkywardEvent) -> None:
        if isinstance(event, events.LogLine):
            style = "red" if event.stream == "stderr" else ""
            self.console.print(
                Text(f"[node {event.node}] ", style="dim") + Text(event.line, style),
                soft_wrap=True,
            )
            return
        with self._lock:
            self._record(event)
        if isinstance(event, events.ProvisioningStarted):
            self._board = _Board.of(self.console)
            self._board.add(self)
        elif isinstance(event, events.CostFinal) and self._board is not None:
            self._board.remove(self)
            self._board = None

    def _record(self, event: events.SkywardEvent) -> None:
        match event:
            case events.ProvisioningStarted(nodes=nodes, provider=provider):
                self._name = self._name or event.pool
                self._provider = self._provider or provider
                self._nodes = {i: _NodeRow() for i in range(nodes)}
                self._provision = self._phases.add_task("Provisioning", total=nodes)
                self._bootstrap = self._phases.add_task(
                    "Bootstrap", total=nodes, start=False
                )
                self._state = "provisioning"
            case events.InstanceProvisioned(node=node):
                self._row(node).status = "provisioned"
                self._advance(self._provision)
            case events.BootstrapProgress(node=node, step=step, status=status):
                if self._bootstrap is not None:
                    self._phases.start_task(self._bootstrap)
                self._row(node).status = step if status != "failed" else "failed"
                if step == LAST_STEP and status == "done" and node not in self._booted:
                    self._booted.add(node)
                    self._row(node).status = "ready"
                    self._advance(self._bootstrap)
                self._state = "bootstrapping"
            case events.PoolReady(slots=slots, nodes=nodes):
                self._slots = slots // nodes if nodes else slots
                for task in (self._provision, self._bootstrap):
                    if task is not None:
                        self._phases.start_task(task)
                        self._phases.update(task, completed=nodes)
                for row in self._nodes.values():
                    row.status = "ready"
                self._state = "ready"
            case events.FunctionCall(node=node):
                self._row(node).running += 1
            case events.FunctionResult(node=node, ok=ok):
                row = self._row(node)
                row.running = max(0, row.running - 1)
                row.done += 1
                self._done += ok
                self._failed += not ok
            case events.Metrics():
                row = self._row(event.node)
                row.cpu = event.cpu_percent
                row.memory = event.memory_percent
                row.gpu = event.gpu_utilization
                row.gpu_memory = event.gpu_memory_percent
            case events.NodeLost(node=node):
                self._row(node).status = "lost"
            case events.CostUpdate(hourly_rate=rate, total_cost=cost):
                self._rate, self._cost = rate, cost
            case events.PoolStopped(error=error):
                self._state = "failed" if error else "stopped"
                for row in self._nodes.values():
                    row.running = 0
                    if row.status != "lost":
                        row.status = "stopped"
            case events.CostFinal(hourly_rate=rate, total_cost=cost):
                self._rate, self._cost = rate, cost

    def _row(self, node: int) -> _NodeRow:
        return self._nodes.setdefault(node, _NodeRow())

    def _advance(self, task: TaskID | None) -> None:
        if task is not None:
            self._phases.advance(task)

    # -- drawing (rich's refresh thread) --------------------------------------

    def _money(self) -> tuple[float, float]:
        pool = self.pool
        if pool is not None and self._state not in ("stopped", "failed"):
            return pool.total_cost, pool.hourly_rate
        return self._cost, self._rate

    def render(self) -> RenderableType:
        with self._lock:
            return self._render()

    def _render(self) -> RenderableType:
        nodes = Table(box=None, pad_edge=False, expand=False, header_style="bold")
        for column in ("node", "status", "cpu", "mem", "gpu", "gpu mem", "tasks"):
            nodes.add_column(column, justify="left" if column == "status" else "right")
        for index, row in sorted(self._nodes.items()):
            nodes.add_row(
                str(index),
                Text(row.status, style=_STATUS_STYLE.get(row.status, "yellow")),
                _percent(row.cpu),
                _percent(row.memory),
                _percent(row.gpu),
                _percent(row.gpu_memory),
                f"{row.running} running, {row.done} done",
            )
        running = sum(row.running for row in self._nodes.values())
        cost, rate = self._money()
        footer = Text.assemble(
            ("Tasks ", "bold"),
            f"{self._done} done, {running} running",
            (f", {self._failed} failed" if self._failed else "", "red"),
            ("   Cost ", "bold"),
            f"{money(cost)} at {money(rate)}/h",
        )
        title = (
            f"skyward · {self._name} · {self._provider} · "
            f"{plural(len(self._nodes), 'node')} x {plural(self._slots, 'slot')}"
        )
        return Panel(
            Group(self._phases, Text(""), nodes, Text(""), footer),
            title=title,
            title_align="left",
            subtitle=self._state,
            subtitle_align="right",
            border_style=_STATE_STYLE.get(self._state, "blue"),
            expand=False,
        )


_STATUS_STYLE = {"ready": "green", "stopped": "dim", "lost": "red", "failed": "red"}
_STATE_STYLE = {"ready": "green", "stopped": "dim", "failed": "red"}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


class _Board:
    """One rich ``Live`` per console, showing every open pool's view.

    rich allows one live display per console at a time, and several pools
    (a MultiPool) may be open at once.
    """

    _boards: ClassVar[dict[int, _Board]] = {}
    _boards_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, console: Console):
        self.console = console
        self.views: list[LiveConsole] = []
        self.live: Live | None = None

    @classmethod
    def of(cls, console: Console) -> _Board:
        with cls._boards_lock:
            board = cls._boards.get(id(console))
            if board is None:
                board = cls._boards[id(console)] = _Board(console)
            return board

    def add(self, view: LiveConsole) -> None:
        with self._boards_lock:
            self.views.append(view)
            if self.live is None:
                self.live = Live(
                    console=self.console,
                    get_renderable=self.render,
                    refresh_per_second=4,
                    transient=False,
                )
                self.live.start()

    def remove(self, view: LiveConsole) -> None:
        with self._boards_lock:
            if view not in self.views:
                return
            last = len(self.views) == 1
            if last and self.live is not None:
                self.live.stop()  # draws the final state and leaves it on screen
                self.live = None
                self._boards.pop(id(self.console), None)
            elif self.live is not None:
                # Keep the finished pool's final state above the others.
                self.live.console.print(view.render())
            self.views.remove(view)

    def render(self) -> RenderableType:
        views: list[Any] = [view.render() for view in list(self.views)]
        return Group(*views)
