"""Stopping child processes politely, then firmly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable


async def terminate(procs: Iterable[asyncio.subprocess.Process], grace: float) -> None:
    """SIGTERM every process, wait up to ``grace`` seconds, SIGKILL the rest."""
    procs = [p for p in procs if p.returncode is None]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
