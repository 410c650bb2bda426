"""Many small calls run as one task, so they cost one round trip.

The client pickles a :class:`Chunk` with the user's function once per map;
a node imports this module to unpickle it, which is why it lives in the
runtime rather than next to the Executor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Chunk:
    """Calls ``fn(*args)`` for each argument tuple of a chunk, in order."""

    def __init__(self, fn: Callable[..., Any]):
        self.function = fn
        self.__qualname__ = getattr(fn, "__qualname__", type(fn).__name__)

    def __call__(self, chunk: Iterable[tuple[Any, ...]]) -> list[Any]:
        fn = self.function
        return [fn(*args) for args in chunk]

    def __repr__(self) -> str:
        return f"<Chunk of {self.__qualname__}>"
