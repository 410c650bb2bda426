"""``sky.MultiPool``: several pools provisioned at once, torn down together.

    with sky.MultiPool(pool_a, pool_b) as (a, b):
        ...

Every pool opens concurrently on Skyward's loop, so setup takes as long as
the slowest pool, not the sum. If one fails, the others are torn down before
the failure is raised; on the way out every pool is torn down, even when the
body or another pool's teardown raised.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from skyward.api.pool import ComputePool
from skyward.cluster.loop import run as run_in_loop


class MultiPool:
    """Open several :class:`~skyward.ComputePool` objects concurrently.

    ``with`` gives the pools back as a tuple, in the order they were given.
    The pools are not made active for ``>> sky``: send to each by name.
    """

    def __init__(self, *pools: ComputePool):
        if not pools:
            raise TypeError("MultiPool needs at least one ComputePool")
        for position, pool in enumerate(pools):
            if not isinstance(pool, ComputePool):
                raise TypeError(
                    f"MultiPool takes ComputePool objects; argument {position} is "
                    f"{type(pool).__name__}"
                )
        if len({id(pool) for pool in pools}) != len(pools):
            raise ValueError("MultiPool was given the same ComputePool twice")
        self.pools: tuple[ComputePool, ...] = pools

    def __len__(self) -> int:
        return len(self.pools)

    def __repr__(self) -> str:
        names = ", ".join(pool.name for pool in self.pools)
        return f"<MultiPool {names}>"

    def __enter__(self) -> tuple[ComputePool, ...]:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failure = self.close(error=exc)
        if exc is None and failure is not None:
            raise failure

    def open(self) -> tuple[ComputePool, ...]:
        """Provision every pool concurrently; on any failure, close them all."""
        for pool in self.pools:
            pool._prepare_open()
        try:
            results = run_in_loop(self._open_all())
        except BaseException as exc:  # interrupted: results are unknown
            self.close(error=exc)
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.close(error=failures[0])
            first = failures[0]
            for other in failures[1:]:
                first.add_note(
                    f"Another pool of the MultiPool also failed: "
                    f"{type(other).__name__}: {other}"
                )
            raise first
        return self.pools

    async def _open_all(self) -> list[ComputePool | BaseException]:
        return await asyncio.gather(
            *(pool.open_async() for pool in self.pools), return_exceptions=True
        )

    def close(self, error: BaseException | None = None) -> BaseException | None:
        """Tear every pool down concurrently; return the first failure, if any."""
        try:
            results = run_in_loop(self._close_all(error))
        finally:
            for pool in self.pools:
                pool._restore_sigterm()
        failures = [r for r in results if isinstance(r, BaseException)]
        return failures[0] if failures else None

    async def _close_all(
        self, error: BaseException | None
    ) -> list[BaseException | None]:
        return await asyncio.gather(
            *(pool.close_async(error) for pool in self.pools), return_exceptions=True
        )
