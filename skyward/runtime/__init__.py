"""What runs on a node: the worker loop and the API tasks call.

Shipped to nodes as source and imported there without the rest of Skyward,
so nothing here may import from outside ``skyward.runtime`` beyond the
standard library and cloudpickle (heavy libraries only lazily, inside the
functions that need them).
"""

from skyward.runtime.context import InstanceInfo, Peer, instance_info
from skyward.runtime.sampler import DistributedSampler
from skyward.runtime.shard import partition, shard

__all__ = [
    "DistributedSampler",
    "InstanceInfo",
    "Peer",
    "instance_info",
    "partition",
    "shard",
]
