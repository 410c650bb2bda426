"""Each node's share of a dataset, epoch by epoch: :class:`DistributedSampler`.

Like ``torch.utils.data.DistributedSampler``, but the rank and the number of
replicas come from :func:`~skyward.runtime.context.instance_info` (rank = the
node, replicas = the pool's nodes), so it needs no process group. Every node
draws the same permutation for an epoch (seeded by ``seed + epoch`` with
Python's own generator, the same on every node) and takes every
``num_replicas``-th index of it starting at its rank.

With ``drop_last=False`` and a dataset that does not divide evenly, the
permutation is padded with its own first indices, as torch does, so every
rank runs the same number of steps: a rank with one batch more would wait
forever in a collective its peers never join. ``drop_last=True`` drops the
tail instead. Either way the parts are disjoint apart from that padding and,
without ``drop_last``, cover the dataset.

An instance is a real ``torch.utils.data.Sampler`` when torch is installed;
without torch it is still an iterable of indices with a length.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sized
from typing import Any

from skyward.runtime.context import instance_info


class DistributedSampler:
    """Yield this node's indices of ``dataset`` for the current epoch.

    Call :meth:`set_epoch` at the start of each epoch so shuffled epochs
    differ. ``num_replicas`` and ``rank`` override the pool's topology.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> DistributedSampler:
        if cls is DistributedSampler:
            cls = _torch_sampler_class() or cls
        return object.__new__(cls)

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if num_replicas is None or rank is None:
            info = instance_info()
            num_replicas = info.total_nodes if num_replicas is None else num_replicas
            rank = info.node if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        size = len(dataset)
        if drop_last:
            self.num_samples = size // num_replicas
        else:
            self.num_samples = math.ceil(size / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation from now on (the same on every node)."""
        self.epoch = epoch

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch, in the order yielded."""
        order = list(range(len(self.dataset)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        if self.drop_last:
            order = order[: self.total_size]
        elif order:
            while len(order) < self.total_size:
                order += order[: self.total_size - len(order)]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (
            f"<DistributedSampler rank {self.rank} of {self.num_replicas}, "
            f"{self.num_samples} samples, epoch {self.epoch}>"
        )


_torch_class: type[DistributedSampler] | None = None


def _torch_sampler_class() -> type[DistributedSampler] | None:
    """A subclass that is also a ``torch.utils.data.Sampler``, made on first use.

    Made lazily so that importing Skyward never imports torch; ``None`` when
    torch is not installed.
    """
    global _torch_class
    if _torch_class is None:
        try:
            from torch.utils.data import Sampler
        except ImportError:
            return None
        _torch_class = type(
            "TorchDistributedSampler",
            (DistributedSampler, Sampler),
            {"__module__": __name__, "__qualname__": "TorchDistributedSampler"},
        )
    return _torch_class


def __getattr__(name: str) -> Any:
    # Lets pickle find the torch subclass in a process that has not made it.
    if name == "TorchDistributedSampler":
        made = _torch_sampler_class()
        if made is not None:
            return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DistributedSampler"]
