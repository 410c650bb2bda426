"""0. Providers: discover the instances each provider offers.

Runs anywhere: this machine is listed through sky.Local(); the AWS and Verda
parts list their offers when credentials are set and say which are missing
when they are not.
"""

from collections.abc import Callable

import skyward as sky
from skyward.errors import MissingCredentialsError, ProviderAPIError


def show(
    title: str, discover: Callable[[], list[sky.InstanceSpec]], limit: int = 10
) -> None:
    print(f"== {title}")
    try:
        instances = discover()
    except MissingCredentialsError as exc:
        print(f"   no credentials: {exc}")
        return
    except ProviderAPIError as exc:
        print(f"   the provider's API failed: {exc}")
        return
    for instance in instances[:limit]:
        print_instance(instance)
    if len(instances) > limit:
        print(f"   ... and {len(instances) - limit} more")


def print_instance(instance: sky.InstanceSpec) -> None:
    gpu = (
        f"{instance.accelerator_count}x {instance.Accelerator}"
        if instance.Accelerator
        else "no GPU"
    )
    spot = (
        f"${instance.price_spot}/hr (spot)"
        if instance.price_spot is not None
        else "no spot price"
    )
    print(
        f"   {instance.name}: {instance.vcpus} vCPUs, {instance.memory_gb:g} GB, {gpu}, {spot}"
    )


# This machine, as sky.Local() sees it
show("Local", sky.Local().available_instances)

# List AWS GPU instances
show(
    "AWS (GPU instances)",
    lambda: [i for i in sky.AWS().available_instances() if i.Accelerator],
)

# List Verda instances
show("Verda", sky.Verda().available_instances)
