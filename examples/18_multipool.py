"""A three-stage pipeline, each stage on the hardware it needs.

The three pools are provisioned in parallel. On a cloud, training runs on
an A100; on Local (or any node without a GPU) torch trains on the CPU.
"""

import skyward as sky


@sky.compute
def preprocess(data: list) -> list:
    return [x * 2 for x in data]


@sky.compute
def train(data: list) -> dict:
    import torch

    # Fit y = 3x + 1 on the preprocessed inputs, on the GPU when there is one.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x = torch.tensor(data, dtype=torch.float32, device=device).unsqueeze(1) / 10
    y = 3 * x + 1
    model = torch.nn.Linear(1, 1).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(500):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return {
        "loss": round(loss.item(), 4),
        "weight": round(model.weight.item(), 2),
        "bias": round(model.bias.item(), 2),
    }


@sky.compute
def evaluate(model: dict) -> dict:
    test = [(x, 3 * x + 1) for x in (0.5, 1.5, 2.5)]
    hits = sum(abs(model["weight"] * x + model["bias"] - y) < 0.1 for x, y in test)
    return {"test_accuracy": hits / len(test)}


raw_data = list(range(10))
provider = sky.provider_from_env()

# Provision all pools in parallel. On a cloud, a name= makes a named pool
# that outlives the block for reuse; keep=False destroys it on exit anyway.
with sky.MultiPool(
    sky.ComputePool(provider=provider, cpu=8, name="preprocess", keep=False),
    sky.ComputePool(provider=provider, accelerator="A100", name="train", keep=False),
    sky.ComputePool(provider=provider, accelerator="T4", name="eval", keep=False),
) as (prep_pool, train_pool, eval_pool):
    # Stage 1: Preprocess on CPU
    processed = preprocess(raw_data) >> prep_pool
    print(f"Processed on {prep_pool.name}: {processed}")

    # Stage 2: Train on A100
    model = train(processed) >> train_pool
    print(f"Trained on {train_pool.name}: {model}")

    # Stage 3: Evaluate on T4
    metrics = evaluate(model) >> eval_pool
    print(f"Evaluated on {eval_pool.name}: {metrics}")
