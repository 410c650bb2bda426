"""Multi-node DDP training with torch.distributed.

`@sky.integrations.torch()` sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK
and LOCAL_RANK from the pool and initialises the process group (nccl on GPU
nodes, gloo on CPU nodes) before the function runs, and destroys it after.
Each node trains on its DistributedSampler share; DDP averages the gradients.
"""

import skyward as sky


def create_dataset():
    import torch
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(0)  # the same data on every node
    x = torch.randn(4096, 16, generator=generator)
    true_w = torch.randn(16, 1, generator=generator)
    y = x @ true_w + 0.1 * torch.randn(4096, 1, generator=generator)
    return TensorDataset(x, y)


def simple_net():
    import torch.nn as nn

    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))


@sky.compute
@sky.integrations.torch()
def train_model(epochs: int, batch_size: int) -> dict:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader

    info = sky.instance_info()
    device = "cuda" if torch.cuda.is_available() else "cpu"

    # Model
    torch.manual_seed(0)
    model = simple_net().to(device)
    if dist.is_initialized():
        model = DDP(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    # Data
    dataset = create_dataset()
    sampler = sky.DistributedSampler(dataset, shuffle=True)
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch_size)

    # Training
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
        loss = total / count

        if info.is_head:
            print(f"Epoch {epoch}: loss={loss:.4f}")

    weights = sum(float(p.detach().double().sum()) for p in model.parameters())
    return {
        "node": info.node,
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "final_loss": loss,
        "weights": weights,
    }


with sky.ComputePool(
    provider=sky.provider_from_env(),
    nodes=2,
    accelerator=sky.NVIDIA.A100,
    image=sky.Image(pip=["torch"]),
) as pool:
    results = train_model(epochs=10, batch_size=64) @ pool

    for r in results:
        print(f"rank {r['rank']}/{r['world_size']} (node {r['node']}): final loss {r['final_loss']:.4f}")
    in_sync = len({round(r["weights"], 6) for r in results}) == 1
    print(f"Weights identical on every node: {in_sync}")
