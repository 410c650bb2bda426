"""Run blocking calls concurrently from the client: :func:`map_async`.

For code such as ``map_async(lambda x: heavy(x, x) >> sky, range(100))``:
each call blocks on the pool, so running many from threads keeps every slot
busy. Threads inherit the caller's context, so ``>> sky`` finds the pool.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_async(
    fn: Callable[[T], R], items: Iterable[T], max_workers: int | None = None
) -> Iterator[R]:
    """Call ``fn`` on every item from a thread pool; yield results in order.

    ``max_workers`` defaults to the active pool's slot count (at least 1, at
    most 256), so each slot has one call waiting on it. The first call that
    raises re-raises here, at its position in the order.
    """
    items = list(items)
    if max_workers is None:
        max_workers = _default_workers(len(items))
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    executor = ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix="skyward-map"
    )
    futures = [
        executor.submit(contextvars.copy_context().run, fn, item) for item in items
    ]
    executor.shutdown(wait=False)

    def results() -> Iterator[R]:
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    return results()


def _default_workers(n_items: int) -> int:
    from skyward.api.pool import current_pool
    from skyward.errors import NoActivePoolError

    try:
        slots = current_pool().total_slots
    except NoActivePoolError:
        slots = 8
    return max(1, min(256, slots, n_items or 1))


__all__ = ["map_async"]
