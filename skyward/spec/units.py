"""Sizes people write (``"4GB"``, ``"512 MiB"``) as whole mebibytes."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "m": 1,
    "mb": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "t": 1024 * 1024,
    "tb": 1024 * 1024,
    "tib": 1024 * 1024,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_memory_mib(value: str | int | float) -> int:
    """Return ``value`` in MiB. Bare numbers are MiB; strings need a known unit.

    Raises ValueError naming the value and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"memory must be a size such as '4GB', not {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"memory must be positive, got {value!r}")
        return int(value)
    match = _PATTERN.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"cannot read {value!r} as a memory size; write a number with one of "
            "the units MB, GB or TB (MiB, GiB, TiB also work), for example '4GB'"
        )
    mib = float(match.group(1)) * _UNITS[unit]
    if mib <= 0:
        raise ValueError(f"memory must be positive, got {value!r}")
    return int(mib)
