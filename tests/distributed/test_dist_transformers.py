"""Hugging Face Trainer started on every node trains as one job."""

from __future__ import annotations

import pytest

import skyward as sky

pytest.importorskip("transformers", reason="CI installs it (.ci/deps/dist.txt)")
pytest.importorskip("accelerate", reason="CI installs it (.ci/deps/dist.txt)")

pytestmark = pytest.mark.slow


@sky.integrations.transformers()
@sky.compute
def train(steps: int) -> dict:
    import os
    import tempfile

    import torch
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=50, dim=16, hidden_dim=32, n_layers=1, n_heads=2, num_labels=2
    )
    model = DistilBertForSequenceClassification(config)
    # label = whether token 7 appears: learnable, and the same data everywhere
    data = torch.Generator().manual_seed(1)
    ids = torch.randint(8, 50, (256, 12), generator=data)
    labels = torch.randint(0, 2, (256,), generator=data)
    ids[labels == 1, 0] = 7
    rows = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels, strict=True)]
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        ddp_find_unused_parameters=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "world_size": args.world_size,
        "process_index": args.process_index,
        "parallel_mode": str(args.parallel_mode),
        "use_cpu_env": os.environ.get("ACCELERATE_USE_CPU"),
        "losses": losses,
        "weights": [p.detach().tolist() for p in model.parameters()][-2:],
    }


@sky.compute
def leftovers() -> dict:
    import os

    import torch.distributed as dist

    return {
        "initialized": dist.is_initialized(),
        "env": [k for k in ("RANK", "ACCELERATE_USE_CPU") if k in os.environ],
    }


def test_trainer_on_every_node_is_one_job_and_can_run_again(pool):
    for _ in range(2):  # accelerate's process-wide state must not stick
        first, second = train(12) @ pool
        assert first["world_size"] == second["world_size"] == 2
        assert (first["process_index"], second["process_index"]) == (0, 1)
        assert first["parallel_mode"] == "ParallelMode.DISTRIBUTED"
        assert first["weights"] == second["weights"]
        assert first["losses"] == second["losses"]
        assert sum(first["losses"][-3:]) < sum(first["losses"][:3])
    assert [r["use_cpu_env"] for r in (first, second)] == ["true", "true"]
    for r in leftovers() @ pool:
        assert r == {"initialized": False, "env": []}
