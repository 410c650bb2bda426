"""The user-facing API: compute functions, operators, pools."""

from skyward.api.compute import (
    ComputeFunction,
    PendingCompute,
    PendingGroup,
    compute,
    gather,
)
from skyward.api.executor import Executor
from skyward.api.multipool import MultiPool
from skyward.api.pool import ComputePool, current_pool, pool

__all__ = [
    "ComputeFunction",
    "ComputePool",
    "Executor",
    "MultiPool",
    "PendingCompute",
    "PendingGroup",
    "compute",
    "current_pool",
    "gather",
    "pool",
]
