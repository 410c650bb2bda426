# Checked by mypy in test_typing.py; not collected by pytest.
from typing import reveal_type

import skyward as sky


@sky.compute
def add(x: int, y: int) -> int:
    return x + y


@sky.compute
def name(n: int) -> str:
    return str(n)


def use(pool: sky.ComputePool) -> None:
    reveal_type(add(1, 2))
    reveal_type(add(1, 2) >> pool)
    reveal_type(add(1, 2) @ pool)
    reveal_type((add(1, 2) & name(3)) >> pool)
    reveal_type(sky.gather(add(1, 2), add(3, 4)) >> pool)
    add("one", 2)
