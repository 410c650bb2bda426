"""4. Verda: a GPU cloud as an alternative provider.

Lists Verda's L40S offers when VERDA_CLIENT_ID and VERDA_CLIENT_SECRET are
set (and says so when they are not). Pools on Verda come in a later version
of Skyward, so the task itself runs on the provider SKYWARD_PROVIDER names,
this machine by default, and reports whether it found a GPU.
"""

import skyward as sky
from skyward.errors import MissingCredentialsError


@sky.compute
def gpu_info() -> dict:
    import torch

    return {
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count(),
    }


try:
    offers = [i for i in sky.Verda().available_instances() if i.Accelerator == "L40S"]
    for offer in offers:
        print(
            f"Verda {offer.name}: ${offer.price_on_demand}/hr, ${offer.price_spot}/hr (spot)"
        )
except MissingCredentialsError as exc:
    print(f"Verda: {exc}")

provider = sky.provider_from_env()
machine_gpu = (
    provider.available_instances()[0].accelerator
    if isinstance(provider, sky.Local)
    else "L40S"
)

with sky.ComputePool(provider=provider, accelerator=machine_gpu) as pool:
    result = gpu_info() >> pool
    print(result)
    if not result["cuda_available"]:
        print("No GPU on this node.")
