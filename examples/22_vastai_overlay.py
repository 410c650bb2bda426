"""An all-reduce across the nodes: the check that the network lets NCCL through.

On VastAI (SKYWARD_PROVIDER=vastai) the pool rents GPUs from the marketplace
and joins them with an overlay network, a virtual LAN that NCCL can use;
`@sky.integrations.torch()` points NCCL at that interface. Anywhere else the
same check runs on the provider chosen by SKYWARD_PROVIDER (this machine by
default), over gloo when the nodes have no GPU.
"""

import os

import skyward as sky


@sky.compute
@sky.integrations.torch()
def distributed_train(batch_data: list) -> dict:
    import torch
    import torch.distributed as dist

    # The process group is initialised by the torch integration (nccl on
    # GPU nodes, gloo otherwise) and destroyed when this function returns.
    rank = dist.get_rank()
    world_size = dist.get_world_size()
    info = sky.instance_info()

    # All-reduce example
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tensor = torch.tensor([rank + 1.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    expected_sum = sum(range(1, world_size + 1))

    return {
        "rank": rank,
        "world_size": world_size,
        "node": info.node,
        "is_head": info.is_head,
        "backend": dist.get_backend(),
        "overlay_ip": info.peers[info.node].ip if info.peers else "N/A",
        "all_reduce_result": tensor.item(),
        "nccl_working": tensor.item() == expected_sum,
    }


if os.environ.get("SKYWARD_PROVIDER") == "vastai":
    # VastAI with overlay networking
    provider = sky.VastAI(
        geolocation="US",
        min_reliability=0.95,
        bid_multiplier=1.3,
        use_overlay=True,  # Enable overlay (default for nodes > 1)
    )
    nodes = 4  # Multi-node triggers overlay creation
else:
    provider = sky.provider_from_env()
    nodes = 2

with sky.ComputePool(
    provider=provider,
    accelerator="RTX 4090",
    nodes=nodes,
    image=sky.Image(
        pip=["torch"],
        env={"NCCL_DEBUG": "INFO"},
    ),
    allocation="spot-if-available",
) as pool:
    # Broadcast to all nodes
    results = distributed_train([]) @ pool

    for r in results:
        print(
            f"rank {r['rank']}/{r['world_size']} on node {r['node']} ({r['overlay_ip']}): "
            f"all-reduce {r['all_reduce_result']:.0f}"
        )

    # Verify the collective (NCCL on GPUs, Gloo on CPU nodes)
    all_working = all(r["nccl_working"] for r in results)
    backend = results[0]["backend"].upper()
    print(f"{backend}: {'SUCCESS' if all_working else 'FAILED'}")
