"""4. Verda: a GPU cloud as an alternative provider.

Lists Verda's L40S offers when VERDA_CLIENT_ID and VERDA_CLIENT_SECRET are
set, and says so when they are not. Pools on Verda come in a later version
of Skyward, so the task runs on the provider SKYWARD_PROVIDER names (this
machine by default), and reports whether it found a GPU.
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


@sky.pool(provider=sky.provider_from_env(), accelerator="L40S")
def main() -> None:
    result = gpu_info() >> sky
    print(result)
    if not result["cuda_available"]:
        print("No GPU on this node.")


if __name__ == "__main__":
    try:
        for offer in sky.Verda().available_instances():
            if offer.Accelerator == "L40S":
                print(f"Verda {offer.name}: ${offer.price_spot}/hr (spot)")
    except MissingCredentialsError as exc:
        print(f"Verda: {exc}")
    main()
