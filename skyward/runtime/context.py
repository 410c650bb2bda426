"""Where a running task is: :func:`instance_info`.

The worker fills this in from the INIT frame before it runs any task. The
same values are exported as ``SKYWARD_*`` environment variables so that
subprocesses a task starts can find them too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Peer:
    """Another node of the pool, as the nodes see each other."""

    node: int
    ip: str
    public_ip: str = ""


@dataclass(frozen=True)
class InstanceInfo:
    """The topology of the pool as seen from one worker slot."""

    node: int
    total_nodes: int
    slot: int
    concurrency: int
    head_addr: str
    head_port: int
    peers: list[Peer] = field(default_factory=list)
    pool: str = ""
    accelerator: str | None = None
    accelerator_count: int = 0
    accelerator_memory_gb: float = 0.0
    devices: list[str] = field(default_factory=list)

    @property
    def is_head(self) -> bool:
        return self.node == 0

    @property
    def total_slots(self) -> int:
        return self.total_nodes * self.concurrency

    @property
    def global_slot(self) -> int:
        return self.node * self.concurrency + self.slot

    def to_env(self) -> dict[str, str]:
        data = asdict(self)
        return {
            "SKYWARD_INSTANCE_INFO": json.dumps(data),
            "SKYWARD_NODE": str(self.node),
            "SKYWARD_TOTAL_NODES": str(self.total_nodes),
            "SKYWARD_SLOT": str(self.slot),
            "SKYWARD_CONCURRENCY": str(self.concurrency),
            "SKYWARD_HEAD_ADDR": self.head_addr,
            "SKYWARD_HEAD_PORT": str(self.head_port),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceInfo:
        peers = [Peer(**p) for p in data.get("peers", [])]
        return cls(**{**data, "peers": peers})


_current: InstanceInfo | None = None


def _set(info: InstanceInfo) -> None:
    global _current
    _current = info
    os.environ.update(info.to_env())


def instance_info() -> InstanceInfo:
    """The pool topology of the task that is running.

    Raises RuntimeError outside a task (on the client, say).
    """
    if _current is not None:
        return _current
    raw = os.environ.get("SKYWARD_INSTANCE_INFO")
    if raw:
        return InstanceInfo.from_dict(json.loads(raw))
    raise RuntimeError(
        "instance_info() is only available inside a task running on a pool; "
        "call it from a @sky.compute function sent with >> or @."
    )
