"""3. GPU accelerators: ask for a GPU and the packages to use it.

Runs on the provider SKYWARD_PROVIDER names (default: this machine). On this
machine it asks for the GPU the machine has, or none, and reports what the
task found; on a cloud it asks for an L40S. The Image's torch and numpy are
reused from this machine's environment on Local, so nothing is downloaded.
"""

import skyward as sky


@sky.compute
def matrix_multiply(size: int) -> dict:
    import time

    import torch

    info = sky.instance_info()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    start = time.perf_counter()
    _ = torch.matmul(a, b)
    if device == "cuda":
        torch.cuda.synchronize()
    return {
        "gpu_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "accelerator": info.accelerator,
        "seconds": round(time.perf_counter() - start, 3),
    }


provider = sky.provider_from_env()
if isinstance(provider, sky.Local):
    machine = provider.available_instances()[0]
    accelerator = machine.accelerator  # None where this machine has no GPU
    print(f"Local machine: {machine.accelerator or 'no GPU'}")
else:
    accelerator = "L40S"

with sky.ComputePool(
    provider=provider,
    image=sky.Image(pip=["torch", "numpy"]),
    accelerator=accelerator,
    allocation="spot-if-available",
) as pool:
    result = matrix_multiply(1024) >> pool
    print(result)
    if not result["gpu_available"]:
        print("No GPU on this node: the multiplication ran on the CPU.")
