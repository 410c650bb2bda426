"""Examples 8 and 20 on Local, against moto's S3 and temporary mount paths."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import run_example as shared_run_example
from tests.volumes.conftest import assert_released


def run_example(name: str, **env: str) -> str:
    return shared_run_example(name, {**os.environ, **env}, timeout=120)


def test_s3_volumes_example(s3: Any, tmp_path: Path):
    s3.create_bucket(Bucket="my-data")
    s3.create_bucket(Bucket="my-models")
    for name in ("a.json", "b.json", "notes.txt"):
        s3.put_object(Bucket="my-data", Key=name, Body=b"{}")
    data, checkpoints = tmp_path / "data", tmp_path / "checkpoints"
    out = run_example(
        "8_s3_volumes.py",
        SKYWARD_DATA_PATH=str(data),
        SKYWARD_CHECKPOINT_PATH=str(checkpoints),
    )
    assert out.splitlines()[-1] == "{'files_found': 2}"
    body = s3.get_object(Bucket="my-models", Key="model.pt")["Body"].read()
    assert body == b"\x00weights\x00" * 4
    assert_released(data, checkpoints)


def test_volumes_example(s3: Any, tmp_path: Path):
    s3.create_bucket(Bucket="my-ml-datasets")
    s3.create_bucket(Bucket="my-ml-outputs")
    s3.put_object(Bucket="my-ml-datasets", Key="training/x.csv", Body=b"1,2,3\n")
    s3.put_object(Bucket="my-ml-datasets", Key="training/y/z.csv", Body=b"4\n")
    data, checkpoints = tmp_path / "data", tmp_path / "checkpoints"
    out = run_example(
        "20_volumes.py",
        SKYWARD_DATA_PATH=str(data),
        SKYWARD_CHECKPOINT_PATH=str(checkpoints),
    )
    assert out.splitlines()[-3:] == [
        f"{data}/x.csv (6 bytes)",
        f"{data}/y/z.csv (2 bytes)",
        f"Saved to {checkpoints}/run1/checkpoint.json",
    ]
    key = "checkpoints/run1/checkpoint.json"
    body = s3.get_object(Bucket="my-ml-outputs", Key=key)["Body"].read()
    assert json.loads(body) == {"epoch": 10, "loss": 0.01}
    assert_released(data, checkpoints)
