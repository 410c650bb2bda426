"""Callbacks that receive a pool's events.

``on_event=`` on a pool, :func:`use_callback` for every pool opened inside a
block, and :func:`compose` to join several into one. Events are delivered on
Skyward's event loop thread, in the order they happened, so a callback must
return quickly: hand slow work to a thread or a queue. A callback that
raises is reported once through the ``skyward`` logger and never breaks the
pool; the other callbacks keep receiving every event.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator

from skyward.events import SkywardEvent

Callback = Callable[[SkywardEvent], object]

log = logging.getLogger(__name__)

# A callback that holds the loop this long delays dispatch and results.
SLOW_CALLBACK = 0.25

_active: contextvars.ContextVar[tuple[Callback, ...]] = contextvars.ContextVar(
    "skyward_callbacks", default=()
)


def compose(*callbacks: Callback | None) -> Callback:
    """One callback that calls each of ``callbacks`` in order (``None`` skipped).

    Inside a pool each part is isolated: one that raises does not keep the
    events from the parts after it.
    """
    chosen = tuple(cb for cb in callbacks if cb is not None)

    def composed(event: SkywardEvent) -> None:
        for cb in chosen:
            cb(event)

    composed.callbacks = chosen  # type: ignore[attr-defined]
    return composed


@contextlib.contextmanager
def use_callback(callback: Callback) -> Iterator[Callback]:
    """Send the events of every pool opened in this block to ``callback``.

    Blocks nest; pools see the callbacks of every enclosing block, outermost
    first. A pool keeps the callbacks it was opened with for its whole life.
    """
    token = _active.set((*_active.get(), callback))
    try:
        yield callback
    finally:
        _active.reset(token)


def active_callbacks() -> tuple[Callback, ...]:
    """The callbacks of the enclosing :func:`use_callback` blocks."""
    return _active.get()


def flatten(callback: Callback) -> list[Callback]:
    """The parts of a :func:`compose`\\ d callback, recursively."""
    parts = getattr(callback, "callbacks", None)
    if isinstance(parts, tuple):
        return [leaf for part in parts for leaf in flatten(part)]
    return [callback]


def _name(callback: Callback) -> str:
    return str(getattr(callback, "__qualname__", None) or callback)


class Dispatcher:
    """Delivers events to callbacks, isolating the pool from their failures."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks: list[Callback] = []
        self._reported: set[int] = set()
        self._slow: set[int] = set()
        for cb in callbacks:
            self.add(cb)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def add(self, callback: Callback) -> None:
        self.callbacks.extend(flatten(callback))

    def __call__(self, event: SkywardEvent) -> None:
        for cb in self.callbacks:
            started = time.perf_counter()
            try:
                cb(event)
            except Exception:
                if id(cb) not in self._reported:
                    self._reported.add(id(cb))
                    log.exception(
                        "Event callback %s raised on %s; it keeps receiving events, "
                        "and further errors from it are not reported",
                        _name(cb),
                        type(event).__name__,
                    )
            took = time.perf_counter() - started
            if took > SLOW_CALLBACK and id(cb) not in self._slow:
                self._slow.add(id(cb))
                log.warning(
                    "Event callback %s took %.2f s on %s; callbacks run on "
                    "Skyward's event loop and hold up every pool while they run. "
                    "Hand slow work to a thread or a queue.",
                    _name(cb),
                    took,
                    type(event).__name__,
                )
