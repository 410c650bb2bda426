"""What a provider can offer: :class:`InstanceSpec`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InstanceSpec(BaseModel):
    """One kind of machine a provider rents out, with its prices per hour."""

    model_config = ConfigDict(frozen=True)

    name: str
    vcpus: int
    memory_gb: float
    accelerator: str | None = None
    accelerator_count: int = 0
    accelerator_memory_gb: float = 0.0
    price_on_demand: float | None = None
    price_spot: float | None = None
    region: str = ""
    provider: str = ""

    # The user's guide spells it with a capital: `instance.Accelerator`.
    @property
    def Accelerator(self) -> str | None:
        return self.accelerator
