"""Give each node its share of data: :func:`shard`."""

from __future__ import annotations

import random
from typing import Any

from skyward.runtime.context import instance_info


def partition(
    n: int,
    part: int,
    parts: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
) -> list[int] | range:
    """Indices of part ``part`` of ``parts`` over ``n`` items.

    Parts are contiguous in the (possibly shuffled) order, differ in size by at
    most one, and together cover every index exactly once unless ``drop_last``,
    which trims all parts to ``n // parts``.
    """
    if not 0 <= part < parts:
        raise ValueError(f"part must be in [0, {parts}), got {part}")
    if drop_last:
        size = n // parts
        start, stop = part * size, (part + 1) * size
    else:
        base, extra = divmod(n, parts)
        start = part * base + min(part, extra)
        stop = start + base + (1 if part < extra else 0)
    if not shuffle:
        return range(start, stop)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order[start:stop]


def _take(data: Any, idx: list[int] | range) -> Any:
    if isinstance(idx, range):
        return data[idx.start : idx.stop]
    module = type(data).__module__.split(".")[0]
    if module == "numpy":
        return data[idx]
    if module == "torch":
        import torch

        return data[torch.as_tensor(idx, dtype=torch.long)]
    if isinstance(data, range):
        return [data[i] for i in idx]
    if isinstance(data, str):
        return "".join(data[i] for i in idx)
    if isinstance(data, tuple):
        return tuple(data[i] for i in idx)
    if isinstance(data, list):
        return [data[i] for i in idx]
    if module == "pandas":
        return data.iloc[idx]
    return [data[i] for i in idx]


def shard(
    *data: Any,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    node: int | None = None,
    total_nodes: int | None = None,
) -> Any:
    """This node's part of each of ``data``, keeping each one's type.

    Every array passed together is cut by the same indices, so ``x`` and ``y``
    stay aligned. Unshuffled parts are slices (a range stays a range);
    shuffled ones are gathered (a shuffled range becomes a list). One argument
    returns its part; several return a tuple of parts.
    """
    if not data:
        raise TypeError("shard() needs at least one sequence")
    if node is None or total_nodes is None:
        info = instance_info()
        node = info.node if node is None else node
        total_nodes = info.total_nodes if total_nodes is None else total_nodes
    lengths = [len(d) for d in data]
    if len(set(lengths)) > 1:
        raise ValueError(
            f"shard() needs sequences of one length to keep them aligned; "
            f"got lengths {lengths}"
        )
    idx = partition(
        lengths[0], node, total_nodes, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    parts = tuple(_take(d, idx) for d in data)
    return parts[0] if len(parts) == 1 else parts


__all__ = ["partition", "shard"]
