"""Client side of the SSH execution layer: connections, slots, dispatch."""

import logging

# asyncssh logs every channel at INFO; that is detail for Skyward users.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

from skyward.cluster.cluster import Cluster, NodeEndpoint, Topology
from skyward.cluster.task import FunctionRef, Task, function_ref

__all__ = ["Cluster", "FunctionRef", "NodeEndpoint", "Task", "Topology", "function_ref"]
