"""Give every node its own share of the data: DistributedSampler and shard().

`sky.DistributedSampler` is a torch Sampler whose rank and world size come
from the pool (rank = node), so a DataLoader on each node reads a disjoint
part of the dataset, reshuffled each epoch the same way on every node.
`sky.shard` does the same for arrays and lists in one call.
"""

import skyward as sky


@sky.compute
def train_with_sampler(epochs: int) -> dict:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    # Create dataset
    x = torch.randn(10000, 100)
    y = torch.randint(0, 10, (10000,))
    dataset = TensorDataset(x, y)

    # Distributed sampler
    sampler = sky.DistributedSampler(dataset, shuffle=True)
    loader = DataLoader(dataset, sampler=sampler, batch_size=64)

    seen = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # Important!
        batches = 0
        for _batch_x, _batch_y in loader:
            batches += 1  # a training step would go here
        seen.append(list(sampler))

    return {"node": sky.instance_info().node, "batches": batches, "epochs": seen}


@sky.compute
def train_with_shard(x_full: list[float], y_full: list[int]) -> dict:
    # Simple sharding
    x_local, y_local = sky.shard(x_full, y_full, shuffle=True, seed=42)
    return {"node": sky.instance_info().node, "x": x_local, "y": y_local}


with sky.ComputePool(
    provider=sky.provider_from_env(), nodes=2, image=sky.Image(pip=["torch"])
) as pool:
    results = train_with_sampler(epochs=3) @ pool
    for r in results:
        print(f"node {r['node']}: {len(r['epochs'][0])} samples, {r['batches']} batches per epoch")

    epoch0 = [set(r["epochs"][0]) for r in results]
    disjoint = not (epoch0[0] & epoch0[1])
    covering = epoch0[0] | epoch0[1] == set(range(10000))
    reshuffled = results[0]["epochs"][0] != results[0]["epochs"][1]
    print(f"Sampler: disjoint={disjoint}, covers all={covering}, reshuffled per epoch={reshuffled}")

    xs = [i / 10 for i in range(1000)]
    ys = list(range(1000))
    shards = train_with_shard(xs, ys) @ pool
    aligned = all(x == y / 10 for s in shards for x, y in zip(s["x"], s["y"], strict=True))
    total = sorted(y for s in shards for y in s["y"])
    print(f"shard: sizes={[len(s['y']) for s in shards]}, aligned={aligned}, covers all={total == ys}")
