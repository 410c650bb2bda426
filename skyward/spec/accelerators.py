"""Accelerators a pool can ask for, and how names people write resolve to them."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict

from skyward.errors import ConfigurationError


class AcceleratorSpec(BaseModel):
    """One kind of accelerator, how many per node, and an optional MIG layout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    memory_gb: float
    count: int = 1
    mig: tuple[str, ...] = ()

    def __call__(
        self, count: int = 1, mig: list[str] | tuple[str, ...] | None = None
    ) -> AcceleratorSpec:
        """``NVIDIA.A100(mig=[...])``: a variant of this accelerator."""
        return self.model_copy(update={"count": count, "mig": tuple(mig or ())})


# name -> memory in GB
CATALOG: dict[str, float] = {
    "T4": 16,
    "L4": 24,
    "A10G": 24,
    "L40S": 48,
    "A100": 40,
    "A100-80GB": 80,
    "H100": 80,
    "H200": 141,
    "RTX 4090": 24,
    "RTX 6000 Ada": 48,
}


def _key(name: str) -> str:
    return name.upper().replace("_", " ").replace("-", " ").strip()


_BY_KEY = {_key(name): name for name in CATALOG}


def resolve_accelerator(value: Any) -> AcceleratorSpec | None:
    """Turn ``"A100"``, ``NVIDIA.A100`` or an AcceleratorSpec into a spec."""
    if value is None or isinstance(value, AcceleratorSpec):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"accelerator must be a name such as 'A100' or sky.NVIDIA.A100, "
            f"got {value!r}"
        )
    name = _BY_KEY.get(_key(value))
    if name is None:
        close = difflib.get_close_matches(_key(value), list(_BY_KEY), n=3, cutoff=0.4)
        hint = (
            f" Did you mean {', '.join(repr(_BY_KEY[c]) for c in close)}?"
            if close
            else ""
        )
        raise ConfigurationError(
            f"Unknown accelerator {value!r}.{hint} "
            f"Known accelerators: {', '.join(CATALOG)}."
        )
    return AcceleratorSpec(name=name, memory_gb=CATALOG[name])


class _Vendor:
    def __init__(self, names: dict[str, str]):
        for attr, name in names.items():
            setattr(self, attr, AcceleratorSpec(name=name, memory_gb=CATALOG[name]))


NVIDIA: Any = _Vendor(
    {
        "T4": "T4",
        "L4": "L4",
        "A10G": "A10G",
        "L40S": "L40S",
        "A100": "A100",
        "A100_80GB": "A100-80GB",
        "H100": "H100",
        "H200": "H200",
        "RTX_4090": "RTX 4090",
        "RTX_6000_ADA": "RTX 6000 Ada",
    }
)
# pydantic models keep class attributes out of fields only when set afterwards.
setattr(AcceleratorSpec, "NVIDIA", NVIDIA)  # noqa: B010


class AwsInstanceType(BaseModel):
    """One EC2 instance type: its size, its accelerators and on-demand price."""

    model_config = ConfigDict(frozen=True)

    name: str
    vcpus: int
    memory_gib: float
    accelerator: str | None = None
    accelerator_count: int = 0
    on_demand_price: float = 0.0  # USD per hour, us-east-1


# A representative slice of EC2; prices are us-east-1 on-demand list prices.
AWS_INSTANCE_TYPES: tuple[AwsInstanceType, ...] = (
    AwsInstanceType(name="t3.medium", vcpus=2, memory_gib=4, on_demand_price=0.0416),
    AwsInstanceType(name="m6i.large", vcpus=2, memory_gib=8, on_demand_price=0.096),
    AwsInstanceType(name="m6i.xlarge", vcpus=4, memory_gib=16, on_demand_price=0.192),
    AwsInstanceType(name="m6i.2xlarge", vcpus=8, memory_gib=32, on_demand_price=0.384),
    AwsInstanceType(name="m6i.4xlarge", vcpus=16, memory_gib=64, on_demand_price=0.768),
    AwsInstanceType(
        name="m6i.8xlarge", vcpus=32, memory_gib=128, on_demand_price=1.536
    ),
    AwsInstanceType(
        name="g4dn.xlarge",
        vcpus=4,
        memory_gib=16,
        accelerator="T4",
        accelerator_count=1,
        on_demand_price=0.526,
    ),
    AwsInstanceType(
        name="g4dn.12xlarge",
        vcpus=48,
        memory_gib=192,
        accelerator="T4",
        accelerator_count=4,
        on_demand_price=3.912,
    ),
    AwsInstanceType(
        name="g6.xlarge",
        vcpus=4,
        memory_gib=16,
        accelerator="L4",
        accelerator_count=1,
        on_demand_price=0.8048,
    ),
    AwsInstanceType(
        name="g5.xlarge",
        vcpus=4,
        memory_gib=16,
        accelerator="A10G",
        accelerator_count=1,
        on_demand_price=1.006,
    ),
    AwsInstanceType(
        name="g6e.xlarge",
        vcpus=4,
        memory_gib=32,
        accelerator="L40S",
        accelerator_count=1,
        on_demand_price=1.861,
    ),
    AwsInstanceType(
        name="p4d.24xlarge",
        vcpus=96,
        memory_gib=1152,
        accelerator="A100",
        accelerator_count=8,
        on_demand_price=32.7726,
    ),
    AwsInstanceType(
        name="p4de.24xlarge",
        vcpus=96,
        memory_gib=1152,
        accelerator="A100-80GB",
        accelerator_count=8,
        on_demand_price=40.9657,
    ),
    AwsInstanceType(
        name="p5.48xlarge",
        vcpus=192,
        memory_gib=2048,
        accelerator="H100",
        accelerator_count=8,
        on_demand_price=98.32,
    ),
)


def select_aws_instance_type(
    accelerator: AcceleratorSpec | None, cpu: int | None, memory_mib: int | None
) -> AwsInstanceType:
    """The cheapest instance type that has the accelerator, vCPUs and memory.

    Raises ConfigurationError naming what was asked when nothing fits.
    """
    fits = [
        t
        for t in AWS_INSTANCE_TYPES
        if (
            (accelerator is None and t.accelerator is None)
            or (
                accelerator is not None
                and t.accelerator == accelerator.name
                and t.accelerator_count >= accelerator.count
            )
        )
        and t.vcpus >= (cpu or 1)
        and t.memory_gib * 1024 >= (memory_mib or 0)
    ]
    if not fits:
        wanted = (
            ", ".join(
                part
                for part in (
                    f"accelerator={accelerator.name}" if accelerator else "",
                    f"cpu={cpu}" if cpu else "",
                    f"memory={memory_mib} MiB" if memory_mib else "",
                )
                if part
            )
            or "the defaults"
        )
        offered = sorted({t.accelerator for t in AWS_INSTANCE_TYPES if t.accelerator})
        raise ConfigurationError(
            f"No AWS instance type offers {wanted}. AWS accelerators Skyward knows: "
            f"{', '.join(offered)}; pass instance_type= to choose one yourself."
        )
    return min(fits, key=lambda t: (t.on_demand_price, t.vcpus))
