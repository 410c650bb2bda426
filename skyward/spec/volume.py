"""Storage mounted on every node: :class:`S3Volume`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class S3Volume(BaseModel):
    """An S3 bucket (or a prefix of it) mounted at ``mount_path`` on each node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mount_path: str
    bucket: str
    prefix: str = ""
    read_only: bool = False

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"mount_path must be absolute, got {value!r}")
        return value.rstrip("/") or "/"

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError(f"bucket must be a bare bucket name, got {value!r}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    @classmethod
    def from_url(cls, mount_path: str, url: str, read_only: bool = False) -> S3Volume:
        """Build from ``s3://bucket/prefix``."""
        if not url.startswith("s3://"):
            raise ValueError(f"volume URL must start with s3://, got {url!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(
            mount_path=mount_path, bucket=bucket, prefix=prefix, read_only=read_only
        )


def normalize_volumes(value: Any) -> list[S3Volume]:
    """Accept one volume, a list of them, or ``{"/mount": "s3://b/p"}``."""
    if value is None:
        return []
    if isinstance(value, S3Volume):
        return [value]
    if isinstance(value, Mapping):
        return [S3Volume.from_url(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, Sequence) and not isinstance(value, str):
        out = []
        for item in value:
            if isinstance(item, S3Volume):
                out.append(item)
            elif isinstance(item, Mapping):
                out.append(S3Volume(**item))
            else:
                raise ValueError(f"volume entries must be S3Volume, got {item!r}")
        return out
    raise ValueError(
        f"volume must be an S3Volume, a list of them, or a mapping of mount path "
        f"to s3:// URL; got {value!r}"
    )
