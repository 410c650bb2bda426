"""Accelerators a pool can ask for, and how names people write resolve to them.

The catalog holds, for each GPU model Skyward knows, its memory, the MIG
profiles it can be split into, and the AWS instance types that carry it.
``"A100"``, ``sky.NVIDIA.A100`` and ``sky.AcceleratorSpec.NVIDIA.A100(mig=[...])``
all resolve to an :class:`AcceleratorSpec`; anything else is refused here,
before a pool creates anything, with the closest names Skyward knows.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from skyward.errors import ConfigurationError


class MigProfile(BaseModel):
    """One MIG instance size: ``3g.40gb`` takes 3 of 7 compute slices.

    ``memory_slices`` counts the GPU's 8 memory slices the instance uses;
    a layout fits a GPU when both sums stay within the GPU's slices.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    compute_slices: int
    memory_slices: int
    memory_gb: float


class GpuModel(BaseModel):
    """What Skyward knows about one GPU model."""

    model_config = ConfigDict(frozen=True)

    name: str
    memory_gb: float
    mig: tuple[MigProfile, ...] = ()

    def mig_profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.mig if p.name == name.lower()), None)


def _mig(*rows: tuple[str, int, int, float]) -> tuple[MigProfile, ...]:
    return tuple(
        MigProfile(name=n, compute_slices=c, memory_slices=m, memory_gb=g)
        for n, c, m, g in rows
    )


# MIG profiles as NVIDIA's MIG user guide lists them for each model.
_A100_40_MIG = _mig(
    ("1g.5gb", 1, 1, 5),
    ("1g.5gb+me", 1, 1, 5),
    ("1g.10gb", 1, 2, 10),
    ("2g.10gb", 2, 2, 10),
    ("3g.20gb", 3, 4, 20),
    ("4g.20gb", 4, 4, 20),
    ("7g.40gb", 7, 8, 40),
)
_80GB_MIG = _mig(
    ("1g.10gb", 1, 1, 10),
    ("1g.10gb+me", 1, 1, 10),
    ("1g.20gb", 1, 2, 20),
    ("2g.20gb", 2, 2, 20),
    ("3g.40gb", 3, 4, 40),
    ("4g.40gb", 4, 4, 40),
    ("7g.80gb", 7, 8, 80),
)
_H200_MIG = _mig(
    ("1g.18gb", 1, 1, 18),
    ("1g.18gb+me", 1, 1, 18),
    ("1g.35gb", 1, 2, 35),
    ("2g.35gb", 2, 2, 35),
    ("3g.71gb", 3, 4, 71),
    ("4g.71gb", 4, 4, 71),
    ("7g.141gb", 7, 8, 141),
)

CATALOG: dict[str, GpuModel] = {
    m.name: m
    for m in (
        GpuModel(name="T4", memory_gb=16),
        GpuModel(name="L4", memory_gb=24),
        GpuModel(name="A10G", memory_gb=24),
        GpuModel(name="L40S", memory_gb=48),
        GpuModel(name="A100", memory_gb=40, mig=_A100_40_MIG),
        GpuModel(name="A100-80GB", memory_gb=80, mig=_80GB_MIG),
        GpuModel(name="H100", memory_gb=80, mig=_80GB_MIG),
        GpuModel(name="H200", memory_gb=141, mig=_H200_MIG),
        GpuModel(name="RTX 4090", memory_gb=24),
        GpuModel(name="RTX 6000 Ada", memory_gb=48),
    )
}
COMPUTE_SLICES = 7
MEMORY_SLICES = 8


def _key(name: str) -> str:
    """``"rtx_4090"``, ``"RTX-4090"`` and ``"RTX 4090"`` all read the same."""
    return "".join(ch for ch in name.upper() if ch.isalnum())


# Spellings people (and providers) use for the same model.
_ALIASES = {
    "A100 40GB": "A100",
    "A100 SXM4 40GB": "A100",
    "A100 80G": "A100-80GB",
    "A100 SXM4 80GB": "A100-80GB",
    "A100 PCIE 80GB": "A100-80GB",
    "H100 80GB": "H100",
    "H100 SXM": "H100",
    "H100 SXM5": "H100",
    "H100 PCIE": "H100",
    "H200 141GB": "H200",
    "H200 SXM": "H200",
    "RTX4090": "RTX 4090",
    "GEFORCE RTX 4090": "RTX 4090",
    "RTX 6000ADA": "RTX 6000 Ada",
    "RTX 6000 ADA GENERATION": "RTX 6000 Ada",
    "TESLA T4": "T4",
    "L40 S": "L40S",
}
_BY_KEY = {_key(name): name for name in CATALOG} | {
    _key(alias): name for alias, name in _ALIASES.items()
}


def lookup_gpu(name: str) -> GpuModel | None:
    """The catalog entry for a name as people or providers spell it, or None."""
    found = _BY_KEY.get(_key(name))
    return CATALOG[found] if found else None


class AcceleratorSpec(BaseModel):
    """One kind of accelerator, how many per node, and an optional MIG layout.

    ``mig`` lists the MIG instances to create on each GPU; every instance
    becomes one worker slot, pinned to it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    memory_gb: float
    count: int = 1
    mig: tuple[str, ...] = ()

    def __call__(
        self, count: int = 1, mig: list[str] | tuple[str, ...] | None = None
    ) -> AcceleratorSpec:
        """``NVIDIA.A100(mig=[...])``: a variant of this accelerator.

        MIG profiles only the 80 GB A100 has (``3g.40gb``) make ``A100``
        mean ``A100-80GB``, the only GPU such a layout can run on.
        """
        if not isinstance(count, int) or count < 1:
            raise ConfigurationError(
                f"accelerator count must be a whole number of at least 1, got {count!r}"
            )
        layout = tuple(mig or ())
        name = self.name
        if layout and name == "A100":
            fits_40 = all(CATALOG["A100"].mig_profile(p) for p in layout)
            fits_80 = all(CATALOG["A100-80GB"].mig_profile(p) for p in layout)
            if fits_80 and not fits_40:
                name = "A100-80GB"
        if layout:
            check_mig_layout(name, layout)
        return AcceleratorSpec(
            name=name, memory_gb=CATALOG[name].memory_gb, count=count, mig=layout
        )

    @model_validator(mode="after")
    def _check(self) -> AcceleratorSpec:
        if self.count < 1:
            raise ValueError(f"accelerator count must be at least 1, got {self.count}")
        if self.mig:
            check_mig_layout(self.name, self.mig)
        return self

    @property
    def slots_per_node(self) -> int:
        """Worker slots a node gets from MIG: one per MIG instance, else 0."""
        return self.count * len(self.mig)

    def mig_profiles(self) -> list[MigProfile]:
        model = CATALOG[self.name]
        return [p for name in self.mig if (p := model.mig_profile(name)) is not None]


def check_mig_layout(name: str, layout: tuple[str, ...]) -> list[MigProfile]:
    """The profiles of ``layout`` on GPU ``name``; ConfigurationError if it can't.

    Checks that every profile exists on that model and that together they fit
    one GPU's 7 compute and 8 memory slices.
    """
    model = CATALOG.get(name)
    if model is None or not model.mig:
        capable = ", ".join(m.name for m in CATALOG.values() if m.mig)
        raise ConfigurationError(
            f"{name} GPUs cannot be split with MIG. MIG works on {capable}."
        )
    profiles: list[MigProfile] = []
    for wanted in layout:
        profile = model.mig_profile(wanted)
        if profile is None:
            valid = ", ".join(p.name for p in model.mig)
            raise ConfigurationError(
                f"MIG profile {wanted!r} does not exist on {name} "
                f"({model.memory_gb:g} GB). Profiles of {name}: {valid}."
            )
        profiles.append(profile)
    compute = sum(p.compute_slices for p in profiles)
    memory = sum(p.memory_slices for p in profiles)
    if compute > COMPUTE_SLICES or memory > MEMORY_SLICES:
        raise ConfigurationError(
            f"MIG layout {list(layout)} does not fit one {name}: it needs {compute} "
            f"of {COMPUTE_SLICES} compute slices and {memory} of {MEMORY_SLICES} "
            "memory slices. Use fewer or smaller instances, for example "
            f"{[model.mig[-1].name]} or {[_half(model)] * 2}."
        )
    return profiles


def _half(model: GpuModel) -> str:
    return next(p.name for p in model.mig if p.compute_slices == 3)


def _spec(name: str, count: int = 1, mig: tuple[str, ...] = ()) -> AcceleratorSpec:
    return AcceleratorSpec(
        name=name, memory_gb=CATALOG[name].memory_gb, count=count, mig=mig
    )


def _unknown(value: str) -> ConfigurationError:
    close = difflib.get_close_matches(_key(value), list(_BY_KEY), n=3, cutoff=0.4)
    names = list(dict.fromkeys(_BY_KEY[c] for c in close))
    hint = f" Did you mean {' or '.join(repr(n) for n in names)}?" if names else ""
    return ConfigurationError(
        f"Unknown accelerator {value!r}.{hint} Known accelerators: "
        f"{', '.join(CATALOG)}."
    )


def resolve_accelerator(value: Any) -> AcceleratorSpec | None:
    """Turn ``"A100"``, ``NVIDIA.A100`` or an AcceleratorSpec into a spec.

    ``"A100:8"`` asks for eight per node.
    """
    if value is None:
        return None
    if isinstance(value, AcceleratorSpec):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            "accelerator must be a name such as 'A100' or sky.NVIDIA.A100, "
            f"got {value!r}"
        )
    name, _, count = value.partition(":")
    model = lookup_gpu(name)
    if model is None:
        raise _unknown(value)
    if count and not count.strip().isdigit():
        raise ConfigurationError(
            f"accelerator {value!r}: write a count after the colon, like 'A100:8'"
        )
    return _spec(model.name, int(count) if count else 1)


class _Vendor:
    """``sky.NVIDIA.A100``: catalog specs as attributes; unknown names fail."""

    def __init__(self, names: dict[str, str]):
        self._names = names
        for attr, name in names.items():
            setattr(self, attr, _spec(name))

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        raise _unknown(attr)


NVIDIA: Any = _Vendor(
    {
        "T4": "T4",
        "L4": "L4",
        "A10G": "A10G",
        "L40S": "L40S",
        "A100": "A100",
        "A100_40GB": "A100",
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
    """One EC2 instance type: its size, its accelerators and on-demand price.

    ``on_demand_price`` is None where the table has no published price.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    vcpus: int
    memory_gib: float
    accelerator: str | None = None
    accelerator_count: int = 0
    on_demand_price: float | None = None  # USD per hour, us-east-1, Linux


def _t(
    name: str, vcpus: int, gib: float, price: float | None, gpu: str = "", n: int = 0
) -> AwsInstanceType:
    return AwsInstanceType(
        name=name,
        vcpus=vcpus,
        memory_gib=gib,
        accelerator=gpu or None,
        accelerator_count=n,
        on_demand_price=price,
    )


# EC2 instance types Skyward picks from, with AWS's published on-demand list
# prices for Linux in us-east-1 (USD per hour). `available_instances()` asks
# EC2 itself for what a region offers; this table is what `select` uses and
# the on-demand price source discovery reports (see docs/readme).
AWS_INSTANCE_TYPES: tuple[AwsInstanceType, ...] = (
    _t("t3.medium", 2, 4, 0.0416),
    _t("m6i.large", 2, 8, 0.096),
    _t("m6i.xlarge", 4, 16, 0.192),
    _t("m6i.2xlarge", 8, 32, 0.384),
    _t("m6i.4xlarge", 16, 64, 0.768),
    _t("m6i.8xlarge", 32, 128, 1.536),
    _t("c6i.large", 2, 4, 0.085),
    _t("c6i.xlarge", 4, 8, 0.17),
    _t("c6i.2xlarge", 8, 16, 0.34),
    _t("c6i.4xlarge", 16, 32, 0.68),
    _t("r6i.large", 2, 16, 0.126),
    _t("r6i.xlarge", 4, 32, 0.252),
    _t("r6i.2xlarge", 8, 64, 0.504),
    _t("g4dn.xlarge", 4, 16, 0.526, "T4", 1),
    _t("g4dn.2xlarge", 8, 32, 0.752, "T4", 1),
    _t("g4dn.4xlarge", 16, 64, 1.204, "T4", 1),
    _t("g4dn.8xlarge", 32, 128, 2.176, "T4", 1),
    _t("g4dn.12xlarge", 48, 192, 3.912, "T4", 4),
    _t("g4dn.metal", 96, 384, 7.824, "T4", 8),
    _t("g6.xlarge", 4, 16, 0.8048, "L4", 1),
    _t("g6.2xlarge", 8, 32, 0.9776, "L4", 1),
    _t("g6.4xlarge", 16, 64, 1.3232, "L4", 1),
    _t("g6.12xlarge", 48, 192, 4.6016, "L4", 4),
    _t("g6.48xlarge", 192, 768, 13.3504, "L4", 8),
    _t("g5.xlarge", 4, 16, 1.006, "A10G", 1),
    _t("g5.2xlarge", 8, 32, 1.212, "A10G", 1),
    _t("g5.4xlarge", 16, 64, 1.624, "A10G", 1),
    _t("g5.12xlarge", 48, 192, 5.672, "A10G", 4),
    _t("g5.48xlarge", 192, 768, 16.288, "A10G", 8),
    _t("g6e.xlarge", 4, 32, 1.861, "L40S", 1),
    _t("g6e.2xlarge", 8, 64, 2.24208, "L40S", 1),
    _t("g6e.12xlarge", 48, 384, 10.49264, "L40S", 4),
    _t("g6e.48xlarge", 192, 1536, 30.13118, "L40S", 8),
    _t("p4d.24xlarge", 96, 1152, 32.7726, "A100", 8),
    _t("p4de.24xlarge", 96, 1152, 40.9657, "A100-80GB", 8),
    _t("p5.48xlarge", 192, 2048, 98.32, "H100", 8),
    _t("p5e.48xlarge", 192, 2048, None, "H200", 8),
    _t("p5en.48xlarge", 192, 2048, None, "H200", 8),
)


def aws_instance_types(accelerator: str) -> list[AwsInstanceType]:
    """The EC2 types in the table that carry ``accelerator`` (a catalog name)."""
    model = lookup_gpu(accelerator)
    if model is None:
        raise _unknown(accelerator)
    return [t for t in AWS_INSTANCE_TYPES if t.accelerator == model.name]


def select_aws_instance_type(
    accelerator: AcceleratorSpec | None, cpu: int | None, memory_mib: int | None
) -> AwsInstanceType:
    """The cheapest instance type that has the accelerator, vCPUs and memory.

    Types without a known price come last. Raises ConfigurationError naming
    what was asked when nothing fits.
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
                    f"count={accelerator.count}"
                    if accelerator and accelerator.count > 1
                    else "",
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
    return min(
        fits,
        key=lambda t: (
            math.inf if t.on_demand_price is None else t.on_demand_price,
            t.vcpus,
        ),
    )


def gpu_model_for(device_name: str, memory_gb: float = 0.0) -> GpuModel | None:
    """The catalog model of a device as drivers name it, or None.

    ``"NVIDIA A100-SXM4-80GB"`` and ``"NVIDIA H100 80GB HBM3"`` carry the
    model's name inside a longer one; the longest catalog name found wins,
    and an A100 with more than 40 GB of memory is the 80 GB model.
    """
    direct = lookup_gpu(device_name)
    key = _key(device_name)
    if direct is None:
        found = [m for m in CATALOG.values() if _key(m.name) in key]
        if not found:
            return None
        direct = max(found, key=lambda m: len(_key(m.name)))
    if direct.name == "A100" and (memory_gb > 48 or "80GB" in key):
        return CATALOG["A100-80GB"]
    return direct
