"""What a node's Python environment holds: :class:`Image`."""

from __future__ import annotations

import hashlib
import json
import re
import sys

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PYTHON = re.compile(r"^3\.\d{1,2}$")


class Image(BaseModel):
    """The environment every node of a pool runs tasks in.

    ``python=None`` means the client's own major.minor, which cloudpickle needs
    on both ends.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str | None = None
    pip: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    setup: tuple[str, ...] = ()

    @field_validator("python")
    @classmethod
    def _check_python(cls, value: str | None) -> str | None:
        if value is not None and not _PYTHON.match(value):
            raise ValueError(f"python must be a version like '3.11', got {value!r}")
        return value

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"env name {key!r} is not a valid variable name")
        return value

    @property
    def python_version(self) -> str:
        return self.python or f"{sys.version_info.major}.{sys.version_info.minor}"

    def content_hash(self) -> str:
        """Stable hash of what the environment contains, for caching it."""
        data = self.model_dump(mode="json")
        data["python"] = self.python_version
        raw = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]
