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
setattr(AcceleratorSpec, "NVIDIA", NVIDIA)  # noqa: B010 - pydantic hides class attrs
