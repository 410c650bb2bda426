"""Lazy calls and the operators that send them to a pool.

    @sky.compute
    def add(x: int, y: int) -> int: ...

    add(1, 2)                -> PendingCompute[int]      nothing runs yet
    add(1, 2) >> pool        -> int                      one slot
    add(1, 2) @ pool         -> tuple[int, ...]          every node
    (add(1, 2) & add(3, 4))  -> PendingGroup[int, int]   >> pool -> (3, 7)
    sky.gather(*calls)       -> PendingGroup             >> pool -> tuple

``>> sky`` and ``@ sky`` (the module itself) mean the pool that is active
here: the enclosing ``with ComputePool(...)`` or ``@sky.pool`` function.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, TypeVarTuple

import cloudpickle

if TYPE_CHECKING:
    from skyward.api.pool import ComputePool

P = ParamSpec("P")
R = TypeVar("R")
R2 = TypeVar("R2")
Ts = TypeVarTuple("Ts")

_INSTALLED = tuple(
    os.path.realpath(p) + os.sep
    for p in {
        sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
)


_decided: set[str] = set()


def ship_by_value(fn: Any) -> None:
    """Make cloudpickle send ``fn``'s module by value when nodes may lack it.

    Modules of the user's project (a script, a test file, a local package)
    do not exist on a node; installed packages do, or the Image installs
    them, so those stay references.
    """
    module_name = getattr(fn, "__module__", None)
    if not module_name or module_name == "__main__" or module_name in _decided:
        return
    module = sys.modules.get(module_name)
    if module is None:
        return
    _decided.add(module_name)
    path = getattr(module, "__file__", None)
    if module_name.split(".")[0] == "skyward" or path is None:
        return
    if os.path.realpath(path).startswith(_INSTALLED):
        return
    try:
        cloudpickle.register_pickle_by_value(module)
    except ValueError:
        pass


class ComputeFunction(Generic[P, R]):
    """A function whose calls are lazy; made by :func:`compute`."""

    def __init__(self, fn: Callable[P, R]):
        functools.update_wrapper(self, fn)
        self.fn = fn
        ship_by_value(fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> PendingCompute[R]:
        return PendingCompute(self.fn, args, kwargs)

    def local(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here, in this process, right now."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<compute function {self.fn.__qualname__}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)


def compute(fn: Callable[P, R]) -> ComputeFunction[P, R]:
    """Decorate a function so calling it returns a :class:`PendingCompute`."""
    if isinstance(fn, ComputeFunction):
        return fn
    return ComputeFunction(fn)


def _resolve(target: ComputePool | ModuleType) -> ComputePool:
    from skyward.api.pool import ComputePool, current_pool

    if isinstance(target, ComputePool):
        return target
    if isinstance(target, ModuleType) and target.__name__ == "skyward":
        return current_pool()
    pool = getattr(target, "compute_pool", None)  # Executor and friends
    if isinstance(pool, ComputePool):
        return pool
    raise TypeError(
        f"a computation can be sent to a ComputePool or to `sky` (the active "
        f"pool), not to {type(target).__name__}"
    )


class PendingCompute(Generic[R]):
    """One call of a compute function, waiting to be sent to a pool."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    def __rshift__(self, pool: ComputePool | ModuleType) -> R:
        """Run on one slot of ``pool`` and return the result."""
        return _resolve(pool).run(self)

    def __matmul__(self, pool: ComputePool | ModuleType) -> tuple[R, ...]:
        """Run once on every node of ``pool``; results ordered by node."""
        return _resolve(pool).broadcast(self)

    def __and__(self, other: PendingCompute[R2]) -> PendingGroup[R, R2]:
        return PendingGroup(self, other)

    def local(self) -> R:
        """Run this call here, in this process."""
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"<PendingCompute {self.name}>"


class PendingGroup(Generic[*Ts]):
    """Calls that run in parallel; ``>> pool`` returns their results in order."""

    __slots__ = ("items",)

    def __init__(self, *items: PendingCompute[Any]):
        for item in items:
            if not isinstance(item, PendingCompute):
                raise TypeError(
                    f"only calls of @sky.compute functions can be grouped, got "
                    f"{type(item).__name__}; decorate the function with @sky.compute"
                )
        self.items: tuple[PendingCompute[Any], ...] = items

    def __and__(self, other: PendingCompute[R]) -> PendingGroup[*Ts, R]:
        return PendingGroup(*self.items, other)

    def __rshift__(self, pool: ComputePool | ModuleType) -> tuple[*Ts]:
        return _resolve(pool).run_many(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"<PendingGroup of {len(self.items)}>"


def gather(*pending: PendingCompute[R]) -> PendingGroup[*tuple[R, ...]]:
    """Group any number of calls to run in parallel: ``gather(*calls) >> pool``."""
    return PendingGroup(*pending)
