"""The validated description of a pool: :class:`PoolSpec`.

Everything a user passes to ``ComputePool`` that describes *what* to create
lands here and is checked before anything starts. Runtime hooks (callbacks,
console) stay on the pool object: they are not part of what gets created.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    field_serializer,
    field_validator,
    model_validator,
)

from skyward.spec.accelerators import AcceleratorSpec, resolve_accelerator
from skyward.spec.image import Image
from skyward.spec.units import parse_memory_mib
from skyward.spec.volume import S3Volume, normalize_volumes

Allocation = Literal["spot", "on-demand", "spot-if-available", "cheapest"]
ALLOCATIONS: tuple[str, ...] = ("spot", "on-demand", "spot-if-available", "cheapest")

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ProviderConfig(BaseModel):
    """Base of the user-facing provider configurations (``sky.Local()``...).

    Subclasses live in ``skyward.infra.providers`` and know how to provision;
    here they are plain data so a spec can be validated, compared and stored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str] = "abstract"

    def check(self, spec: PoolSpec) -> None:
        """Refuse a spec this provider cannot serve. Default: accept anything."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.model_dump(mode="json")}


class PoolSpec(BaseModel):
    """What a pool is made of. Immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    provider: SerializeAsAny[ProviderConfig]
    nodes: int = Field(default=1, ge=1, le=1024)
    concurrency: int = Field(default=1, ge=1, le=1024)
    cpu: int | None = Field(default=None, ge=1)
    memory: int | None = None  # MiB
    accelerator: AcceleratorSpec | None = None
    image: Image = Field(default_factory=Image)
    allocation: Allocation = "spot-if-available"
    name: str | None = None
    volumes: tuple[S3Volume, ...] = ()
    max_cost: float | None = Field(default=None, gt=0)
    idle_timeout: float = Field(default=300.0, gt=0)
    ttl: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _mig_slots(cls, data: Any) -> Any:
        """A MIG layout decides the slots per node: one per MIG instance."""
        accel = data.get("accelerator") if isinstance(data, dict) else None
        if not isinstance(accel, AcceleratorSpec) or not accel.mig:
            return data
        slots = accel.slots_per_node
        concurrency = data.get("concurrency", 1)
        if concurrency in (None, 1):
            return {**data, "concurrency": slots}
        if concurrency != slots:
            raise ValueError(
                f"concurrency={concurrency} does not match the MIG layout "
                f"{list(accel.mig)} on {accel.count} GPU(s), which gives {slots} "
                f"slots per node; leave concurrency out or set it to {slots}"
            )
        return data

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int | None:
        return None if value is None else parse_memory_mib(value)

    @field_validator("accelerator", mode="before")
    @classmethod
    def _accelerator(cls, value: Any) -> AcceleratorSpec | None:
        try:
            return resolve_accelerator(value)
        except Exception as exc:  # surfaced through pydantic with the field name
            raise ValueError(str(exc)) from None

    @field_validator("volumes", mode="before")
    @classmethod
    def _volumes(cls, value: Any) -> tuple[S3Volume, ...]:
        return tuple(normalize_volumes(value))

    @field_validator("image", mode="before")
    @classmethod
    def _image(cls, value: Any) -> Any:
        return Image() if value is None else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(
                f"pool name {value!r} must be lowercase letters, digits and dashes, "
                "starting with a letter or digit, at most 63 characters"
            )
        return value

    @field_serializer("provider")
    def _provider(self, provider: ProviderConfig) -> dict[str, Any]:
        return provider.describe()

    @property
    def total_slots(self) -> int:
        return self.nodes * self.concurrency
