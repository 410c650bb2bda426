"""Pydantic models that describe a pool; validated before anything starts."""

from skyward.spec._errors import build, describe
from skyward.spec.accelerators import NVIDIA, AcceleratorSpec, resolve_accelerator
from skyward.spec.image import Image
from skyward.spec.instances import InstanceSpec
from skyward.spec.pool import ALLOCATIONS, Allocation, PoolSpec, ProviderConfig
from skyward.spec.units import parse_memory_mib
from skyward.spec.volume import S3Volume, normalize_volumes

__all__ = [
    "ALLOCATIONS",
    "NVIDIA",
    "AcceleratorSpec",
    "Allocation",
    "Image",
    "InstanceSpec",
    "PoolSpec",
    "ProviderConfig",
    "S3Volume",
    "build",
    "describe",
    "normalize_volumes",
    "parse_memory_mib",
    "resolve_accelerator",
]
