"""Skyward: run ordinary Python functions on ephemeral compute pools.

import skyward as sky

@sky.compute
def add(x: int, y: int) -> int:
    return x + y

with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
    add(1, 2) >> pool          # 3, on one slot
    add(1, 2) @ pool           # (3, 3), once per node
"""

from typing import Any

from skyward import callback, conc, errors, events, integrations
from skyward.api import (
    ComputeFunction,
    ComputePool,
    Executor,
    MultiPool,
    PendingCompute,
    PendingGroup,
    compute,
    current_pool,
    gather,
    pool,
)
from skyward.errors import SkywardError
from skyward.events import (
    BootstrapProgress,
    CostFinal,
    CostUpdate,
    FunctionCall,
    FunctionResult,
    InstanceProvisioned,
    LogLine,
    Metrics,
    NodeLost,
    PoolReady,
    PoolStopped,
    ProvisioningStarted,
    SkywardEvent,
    StackProgress,
)
from skyward.infra.providers import Local, VastAI, Verda, provider_from_env
from skyward.runtime import (
    DistributedSampler,
    InstanceInfo,
    Peer,
    instance_info,
    shard,
)
from skyward.spec import (
    NVIDIA,
    AcceleratorSpec,
    Image,
    InstanceSpec,
    PoolSpec,
    S3Volume,
)

__version__ = "0.1.0"

# Cloud providers pull in Pulumi and boto3: imported on first use.
_LAZY = {"AWS": "skyward.infra.providers.aws"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skyward' has no attribute {name!r}")


__all__ = [
    "AWS",
    "NVIDIA",
    "AcceleratorSpec",
    "BootstrapProgress",
    "ComputeFunction",
    "ComputePool",
    "CostFinal",
    "CostUpdate",
    "DistributedSampler",
    "Executor",
    "FunctionCall",
    "FunctionResult",
    "Image",
    "InstanceInfo",
    "InstanceProvisioned",
    "InstanceSpec",
    "Local",
    "LogLine",
    "Metrics",
    "MultiPool",
    "NodeLost",
    "Peer",
    "PendingCompute",
    "PendingGroup",
    "PoolReady",
    "PoolSpec",
    "PoolStopped",
    "ProvisioningStarted",
    "S3Volume",
    "SkywardError",
    "SkywardEvent",
    "StackProgress",
    "VastAI",
    "Verda",
    "callback",
    "compute",
    "conc",
    "current_pool",
    "errors",
    "events",
    "gather",
    "instance_info",
    "integrations",
    "pool",
    "provider_from_env",
    "shard",
]
