"""S3 volume mounting patterns: a read-only prefix in, a read-write prefix out.

On Local (the default provider) this machine mounts the buckets with its own
AWS credentials; choose buckets and empty folders with SKYWARD_DATA_BUCKET,
SKYWARD_OUTPUT_BUCKET, SKYWARD_DATA_PATH and SKYWARD_CHECKPOINT_PATH.
"""

import os

import skyward as sky

DATA_PATH = os.environ.get("SKYWARD_DATA_PATH", "/data")
CHECKPOINT_PATH = os.environ.get("SKYWARD_CHECKPOINT_PATH", "/checkpoints")
DATA_BUCKET = os.environ.get("SKYWARD_DATA_BUCKET", "my-ml-datasets")
OUTPUT_BUCKET = os.environ.get("SKYWARD_OUTPUT_BUCKET", "my-ml-outputs")


@sky.compute
def list_data_files() -> list[str]:
    import os

    files = []
    for root, _, filenames in os.walk(DATA_PATH):
        for f in filenames:
            path = os.path.join(root, f)
            size = os.path.getsize(path)
            files.append(f"{path} ({size} bytes)")
    return files[:10]


@sky.compute
def save_checkpoint(data: dict) -> str:
    import json
    import os

    os.makedirs(f"{CHECKPOINT_PATH}/run1", exist_ok=True)
    path = f"{CHECKPOINT_PATH}/run1/checkpoint.json"
    with open(path, "w") as f:
        json.dump(data, f)
    return f"Saved to {path}"


# Read-only volume for input data
data_volume = sky.S3Volume(
    mount_path=DATA_PATH,
    bucket=DATA_BUCKET,
    prefix="training/",
    read_only=True,
)

# Read-write volume for outputs
checkpoint_volume = sky.S3Volume(
    mount_path=CHECKPOINT_PATH,
    bucket=OUTPUT_BUCKET,
    prefix="checkpoints/",
    read_only=False,
)

# Dict syntax also works
volumes_dict = {
    DATA_PATH: f"s3://{DATA_BUCKET}/training/",
    CHECKPOINT_PATH: f"s3://{OUTPUT_BUCKET}/checkpoints/",
}


def main() -> None:
    with sky.ComputePool(
        provider=sky.provider_from_env(),
        accelerator="T4",
        volume=[data_volume, checkpoint_volume],
        image=sky.Image(pip=["numpy"]),
    ) as pool:
        files = list_data_files() >> pool
        result = save_checkpoint({"epoch": 10, "loss": 0.01}) >> pool
    for line in files:
        print(line)
    print(result)


if __name__ == "__main__":
    main()
