"""Client side of the node samplers: JSON lines in, ``Metrics`` events out.

Each node runs ``python -m skyward.runtime.metrics`` on its own channel of
the node's first connection, beside the worker channels, so a sample never
waits behind a task and a task never waits behind a sample. Closing the
channel closes the sampler's stdin, which stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from collections.abc import Callable
from statistics import fmean
from typing import TYPE_CHECKING, Any

import asyncssh

from skyward import events

if TYPE_CHECKING:
    from skyward.cluster.cluster import Node

log = logging.getLogger(__name__)


def sampler_command(node: Node, interval: float) -> str:
    return (
        f'PYTHONPATH="$PWD/{node.runtime_dir}" exec {shlex.quote(node.python)} '
        f"-u -m skyward.runtime.metrics --interval {interval:g}"
    )


def to_event(pool: str, node: int, sample: dict[str, Any]) -> events.Metrics:
    """A node's sample as an event, stamped when the node took it.

    A node with several GPUs reports their mean utilization and memory use.
    """
    gpus = sample.get("gpus") or []
    utils = [g["util"] for g in gpus if g.get("util") is not None]
    mems = [g["mem"] for g in gpus if g.get("mem") is not None]
    return events.Metrics(
        pool=pool,
        timestamp=float(sample.get("time") or time.time()),
        node=node,
        cpu_percent=float(sample["cpu"]),
        memory_percent=float(sample["memory"]),
        gpu_utilization=fmean(utils) if utils else None,
        gpu_memory_percent=fmean(mems) if mems else None,
    )


async def stream(
    node: Node,
    pool: str,
    interval: float,
    emit: Callable[[events.SkywardEvent], None],
) -> None:
    """Run the sampler on ``node`` and emit its samples until cancelled."""
    conn = node.connections[0]
    command = sampler_command(node, interval)
    try:
        process = await conn.create_process(command, encoding="utf-8")
    except (OSError, asyncssh.Error) as exc:
        log.warning(
            "Could not start the metrics sampler on node %d: %s", node.index, exc
        )
        return
    try:
        async for line in process.stdout:
            try:
                event = to_event(pool, node.index, json.loads(line))
            except (ValueError, KeyError, TypeError):
                log.debug("Node %d sent a malformed sample: %r", node.index, line)
                continue
            emit(event)
        completed = await process.wait(check=False)
        if completed.exit_status not in (0, None) and not node.lost:
            log.warning(
                "The metrics sampler on node %d stopped with exit status %s: %s",
                node.index,
                completed.exit_status,
                (completed.stderr or "").strip()[-500:],
            )
    except (OSError, asyncssh.Error) as exc:
        log.debug("Metrics stream of node %d ended: %s", node.index, exc)
    finally:
        process.close()


def start(
    nodes: list[Node],
    pool: str,
    interval: float,
    emit: Callable[[events.SkywardEvent], None],
) -> list[asyncio.Task[None]]:
    loop = asyncio.get_running_loop()
    return [
        loop.create_task(
            stream(node, pool, interval, emit), name=f"metrics-{node.index}"
        )
        for node in nodes
    ]
