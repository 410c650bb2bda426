"""Hugging Face Trainer on every node, training as one job.

`@sky.integrations.transformers()` gives each node the environment `Trainer`
and `accelerate` read (RANK, WORLD_SIZE, MASTER_ADDR, ...) and a process
group over the nodes (nccl on GPUs, gloo here), so each node's `Trainer`
trains its share of the data and gradients are averaged at every step.

To run anywhere without downloads, the model is a tiny DistilBERT built from
a config and the tokenizer is trained on the example's own sentences; on a
GPU pool, use `from_pretrained(...)` and a real dataset instead.
"""

import skyward as sky

POSITIVE = ["great", "wonderful", "brilliant", "moving", "funny", "superb", "charming"]
NEGATIVE = ["terrible", "boring", "awful", "dull", "clumsy", "tedious", "bland"]
FILLER = ["the", "movie", "was", "plot", "acting", "and", "really", "quite", "a", "film"]


def make_reviews(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Short synthetic reviews; label 1 when positive words outnumber negative."""
    import random

    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        label = rng.randint(0, 1)
        strong, weak = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
        words = rng.choices(FILLER, k=6) + rng.choices(strong, k=3) + rng.choices(weak, k=1)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@sky.integrations.transformers()  # backend="nccl" on GPU nodes; the default picks it there
@sky.compute
def fine_tune_bert() -> dict:
    import tempfile

    import numpy as np
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        DistilBertConfig,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
    )

    info = sky.instance_info()
    torch.manual_seed(0)  # the same initial weights on every node

    # Tokenizer, trained on the reviews' words
    train_texts, train_labels = make_reviews(512, seed=1)
    test_texts, test_labels = make_reviews(128, seed=2)
    backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(
        train_texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"])
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]"
    )

    # Load model: a tiny DistilBERT from a config (no weights to download)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
        max_position_embeddings=32, num_labels=2,
    )
    model = AutoModelForSequenceClassification.from_config(config)

    def tokenize(texts, labels):
        encoded = tokenizer(texts, truncation=True, max_length=32)
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
        ]

    def accuracy(prediction):
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    # Training
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        num_train_epochs=3,
        per_device_train_batch_size=16,
        learning_rate=5e-3,
        logging_steps=8,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        ddp_find_unused_parameters=False,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenize(train_texts, train_labels),
        eval_dataset=tokenize(test_texts, test_labels),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )

    result = trainer.train()
    metrics = trainer.evaluate()
    checksum = sum(float(p.detach().double().sum()) for p in model.parameters())
    return {
        "node": info.node,
        "world_size": args.world_size,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "eval_accuracy": metrics["eval_accuracy"],
        "checksum": checksum,
    }


with sky.ComputePool(
    provider=sky.provider_from_env(),
    nodes=2,
    accelerator="A100",
    image=sky.Image(pip=["transformers", "torch", "accelerate"]),
) as pool:
    results = fine_tune_bert() @ pool

    for r in results:
        print(
            f"node {r['node']}: world size {r['world_size']}, {r['steps']} steps, "
            f"train loss {r['train_loss']:.3f}, eval accuracy {r['eval_accuracy']:.1%}"
        )
    same = len({round(r["checksum"], 6) for r in results}) == 1
    print(f"Same weights on every node: {same}")
