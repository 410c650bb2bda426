"""Events a pool reports while it lives.

Every event is an immutable dataclass deriving from :class:`SkywardEvent`, so
callbacks can pattern-match on them::

    match event:
        case sky.LogLine(node=node, line=line):
            ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class SkywardEvent:
    """Base class of all events. ``pool`` names the pool that sent it."""

    pool: str = ""
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisioningStarted(SkywardEvent):
    provider: str
    nodes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceInfo:
    """What provisioning learned about one node."""

    instance_id: str
    ip: str
    node: int
    private_ip: str = ""
    spot: bool = False
    instance_type: str = ""
    hourly_price: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StackProgress(SkywardEvent):
    """A step of a cloud pool's Pulumi stack, as the engine reports it.

    ``op`` is Pulumi's operation (create, update, delete, replace...);
    ``status`` says whether it started, finished or failed.
    """

    stack: str
    resource: str
    type: str
    op: str
    status: Literal["started", "done", "failed"] = "started"
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceProvisioned(SkywardEvent):
    instance: InstanceInfo

    @property
    def node(self) -> int:
        return self.instance.node


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapProgress(SkywardEvent):
    node: int
    step: str
    elapsed: float = 0.0
    status: Literal["started", "done", "failed"] = "started"


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolReady(SkywardEvent):
    nodes: int
    slots: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCall(SkywardEvent):
    function_name: str
    node: int
    slot: int
    task_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionResult(SkywardEvent):
    function_name: str
    node: int
    slot: int
    task_id: int
    duration_ms: float
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine(SkywardEvent):
    node: int
    slot: int
    stream: Literal["stdout", "stderr"]
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics(SkywardEvent):
    node: int
    cpu_percent: float
    memory_percent: float
    gpu_utilization: float | None = None
    gpu_memory_percent: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostUpdate(SkywardEvent):
    hourly_rate: float
    total_cost: float
    elapsed_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CostFinal(SkywardEvent):
    total_cost: float
    duration_seconds: float
    hourly_rate: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLost(SkywardEvent):
    node: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStopped(SkywardEvent):
    seconds: float = 0.0
    error: str | None = None


__all__ = [
    "BootstrapProgress",
    "CostFinal",
    "CostUpdate",
    "FunctionCall",
    "FunctionResult",
    "InstanceInfo",
    "InstanceProvisioned",
    "LogLine",
    "Metrics",
    "NodeLost",
    "PoolReady",
    "PoolStopped",
    "ProvisioningStarted",
    "SkywardEvent",
    "StackProgress",
]
