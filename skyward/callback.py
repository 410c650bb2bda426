"""Callbacks that receive a pool's events.

``on_event=`` on a pool, :func:`use_callback` for every pool opened inside a
block, and :func:`compose` to join several into one. A callback that raises
is reported once through the ``skyward`` logger and never breaks the pool.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

from skyward.events import SkywardEvent

Callback = Callable[[SkywardEvent], object]

log = logging.getLogger(__name__)

_active: contextvars.ContextVar[tuple[Callback, ...]] = contextvars.ContextVar(
    "skyward_callbacks", default=()
)


def compose(*callbacks: Callback | None) -> Callback:
    """One callback that calls each of ``callbacks`` in order."""
    chosen = tuple(cb for cb in callbacks if cb is not None)

    def composed(event: SkywardEvent) -> None:
        for cb in chosen:
            cb(event)

    composed.callbacks = chosen  # type: ignore[attr-defined]
    return composed


@contextlib.contextmanager
def use_callback(callback: Callback) -> Iterator[Callback]:
    """Send the events of every pool opened in this block to ``callback``."""
    token = _active.set((*_active.get(), callback))
    try:
        yield callback
    finally:
        _active.reset(token)


def active_callbacks() -> tuple[Callback, ...]:
    return _active.get()


class Dispatcher:
    """Delivers events to callbacks, isolating the pool from their failures."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)
        self._reported: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def add(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def __call__(self, event: SkywardEvent) -> None:
        for cb in self.callbacks:
            try:
                cb(event)
            except Exception:
                if id(cb) not in self._reported:
                    self._reported.add(id(cb))
                    log.exception(
                        "Event callback %r raised on %s; it keeps receiving events, "
                        "and further errors from it are not reported",
                        getattr(cb, "__qualname__", cb),
                        type(event).__name__,
                    )
