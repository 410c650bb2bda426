"""Tasks as the cluster layer sees them: pickled, numbered, with a future."""

from __future__ import annotations

import inspect
import itertools
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from skyward.errors import SerializationError
from skyward.runtime.protocol import FUNC, FUNC_HEAD, TASK, TASK_HEAD, frame_header

_task_ids = itertools.count(1)
_func_ids = itertools.count(1)


@dataclass(eq=False)
class FunctionRef:
    """A function pickled once and sent to each worker once."""

    func_id: int
    name: str
    pickled: bytes
    # Where the function came from here: cloudpickle ships code by value
    # under the name "<dynamic-code>", and remote tracebacks are mapped back.
    filename: str | None = None

    def frame(self) -> bytes:
        body = FUNC_HEAD.pack(self.func_id) + self.pickled
        return frame_header(FUNC, len(body)) + body


_refs: weakref.WeakKeyDictionary[Any, FunctionRef] = weakref.WeakKeyDictionary()
_refs_by_id: dict[int, FunctionRef] = {}


def function_ref(fn: Any) -> FunctionRef:
    """The cached pickled form of ``fn``; pickled on first use."""
    try:
        ref = _refs.get(fn)
    except TypeError:  # not weak-referenceable: pickle every time
        ref = None
        cacheable = False
    else:
        cacheable = True
    if ref is not None:
        return ref
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    try:
        pickled = cloudpickle.dumps(fn, protocol=5)
    except Exception as exc:
        raise SerializationError(
            f"The function {name!r} cannot be pickled to send it to the pool: "
            f"{type(exc).__name__}: {exc}. Functions that capture locks, open "
            "files or connections in their closure cannot travel; create those "
            "inside the function instead."
        ) from exc
    # Decorators (the integrations) keep the user's function as __wrapped__.
    try:
        source = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        source = fn
    code = getattr(source, "__code__", None)
    ref = FunctionRef(
        next(_func_ids), name, pickled, code.co_filename if code is not None else None
    )
    if cacheable:
        _refs[fn] = ref
    else:
        _refs_by_id[ref.func_id] = ref
    return ref


def _argument_names(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[str, Any]]:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        named = list(bound.arguments.items())
    except (TypeError, ValueError):
        named = [(f"#{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    return named


def pickle_arguments(
    fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bytes:
    """Pickle ``(args, kwargs)``, naming the argument that cannot travel."""
    try:
        return cloudpickle.dumps((args, kwargs), protocol=5)
    except Exception as exc:
        for arg_name, value in _argument_names(fn, args, kwargs):
            try:
                cloudpickle.dumps(value, protocol=5)
            except Exception as inner:
                raise SerializationError(
                    f"Argument {arg_name!r} of {name}() cannot be pickled to send "
                    f"it to the pool: {type(inner).__name__}: {inner}. Pass data "
                    "the task can rebuild (a path, a config) instead."
                ) from inner
        raise SerializationError(
            f"The arguments of {name}() cannot be pickled: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(eq=False)
class Task:
    """One call of a function, ready to be sent."""

    function: FunctionRef
    payload: bytes
    future: Future[Any] = field(default_factory=Future)
    node: int | None = None  # pinned to this node when set
    task_id: int = field(default_factory=lambda: next(_task_ids))
    sent_at: float = 0.0

    @classmethod
    def create(
        cls,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        node: int | None = None,
    ) -> Task:
        ref = function_ref(fn)
        return cls(ref, pickle_arguments(fn, ref.name, args, kwargs), node=node)

    def pinned(self, node: int) -> Task:
        """A copy of this task bound to ``node`` (for broadcasts)."""
        return Task(self.function, self.payload, node=node)

    def head(self) -> bytes:
        size = TASK_HEAD.size + len(self.payload)
        return frame_header(TASK, size) + TASK_HEAD.pack(
            self.task_id, self.function.func_id
        )
