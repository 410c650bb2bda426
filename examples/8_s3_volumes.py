"""Mount S3 buckets as local folders: read inputs, write checkpoints.

On AWS each node mounts the buckets with s3fs and its instance profile. On
Local (the default provider) this machine mounts them with its own AWS
credentials; point it at your buckets and empty folders with
SKYWARD_DATA_BUCKET, SKYWARD_MODEL_BUCKET, SKYWARD_DATA_PATH and
SKYWARD_CHECKPOINT_PATH.
"""

import os
from pathlib import Path

import skyward as sky

DATA_PATH = os.environ.get("SKYWARD_DATA_PATH", "/data")
CHECKPOINT_PATH = os.environ.get("SKYWARD_CHECKPOINT_PATH", "/checkpoints")
DATA_BUCKET = os.environ.get("SKYWARD_DATA_BUCKET", "my-data")
MODEL_BUCKET = os.environ.get("SKYWARD_MODEL_BUCKET", "my-models")

model_bytes = b"\x00weights\x00" * 4


@sky.compute
def use_s3_data() -> dict:
    data_path = Path(DATA_PATH)
    checkpoint_path = Path(CHECKPOINT_PATH)

    # Read from S3
    files = list(data_path.glob("*.json"))

    # Write to S3
    (checkpoint_path / "model.pt").write_bytes(model_bytes)

    return {"files_found": len(files)}


def main() -> None:
    with sky.ComputePool(
        provider=sky.provider_from_env(),
        volume=[
            sky.S3Volume(mount_path=DATA_PATH, bucket=DATA_BUCKET, read_only=True),
            sky.S3Volume(mount_path=CHECKPOINT_PATH, bucket=MODEL_BUCKET),
        ],
    ) as pool:
        result = use_s3_data() >> pool
    print(result)


if __name__ == "__main__":
    main()
