"""3. GPU accelerators: ask for a GPU and the packages to use it.

Runs on the provider SKYWARD_PROVIDER names (default: this machine). Local
nodes use this machine's GPU when it has the one asked for and run without
one otherwise, so the task reports what it found. On Local the Image's torch
and numpy are reused from this machine's environment: nothing is downloaded.
"""

import skyward as sky


@sky.compute
def matrix_multiply(size: int) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    _ = torch.matmul(a, b)

    info = sky.instance_info()
    return {
        "gpu_available": torch.cuda.is_available(),
        "accelerator": info.accelerator,
        "accelerator_count": info.accelerator_count,
    }


@sky.pool(
    provider=sky.provider_from_env(),
    image=sky.Image(pip=["torch", "numpy"]),
    accelerator="L40S",
    allocation="spot-if-available",
)
def main() -> None:
    result = matrix_multiply(1024) >> sky
    print(result)
    if not result["gpu_available"]:
        print("No GPU on this node: the multiplication ran on the CPU.")


if __name__ == "__main__":
    main()
