"""An offline plan of a stack: what a program would create, with no cloud call.

The program runs under :func:`pulumi.runtime.set_mocks` in preview mode:
every resource it declares is recorded with its input properties, values
that only the cloud can know (ids, addresses) stay unknown, and data
lookups (the AMI) answer with a description of what they will look up.
Secret inputs are never shown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.mocks import test as _run_under_mocks
from pulumi.runtime.rpc import UNKNOWN, _special_secret_sig, _special_sig_key

UNKNOWN_TEXT = "(known after up)"
SECRET_TEXT = "[secret]"

# Pulumi's mocked runtime is process-wide state: one plan at a time.
_lock = threading.Lock()


@dataclass(frozen=True)
class PlannedResource:
    """One resource a program declares: its Pulumi type, name and inputs."""

    type: str
    name: str
    inputs: dict[str, Any]
    # As the engine would receive them: secrets still wrapped, never printed.
    raw_inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def short_type(self) -> str:
        """``aws:ec2/instance:Instance`` -> ``aws:ec2:Instance``."""
        package, _, rest = self.type.partition(":")
        module, _, kind = rest.partition(":")
        return f"{package}:{module.split('/')[0]}:{kind}" if kind else self.type


@dataclass(frozen=True)
class PlannedOutput:
    """A stack output as the program declared it."""

    value: Any
    secret: bool
    known: bool


@dataclass
class Plan:
    """What a stack would create, and what it would cost per hour."""

    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, PlannedOutput] = field(default_factory=dict)
    hourly_price: float | None = None
    price_note: str = ""

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "resources": [
                {"type": r.type, "name": r.name, "inputs": r.inputs}
                for r in self.resources
            ],
            "lookups": self.lookups,
            "hourly_price": self.hourly_price,
            "price_note": self.price_note,
        }


LookupAnswer = Callable[[str, Mapping[str, Any]], dict[str, Any]]
CloudAnswer = Callable[[MockResourceArgs], dict[str, Any]]


class _Recorder(Mocks):
    def __init__(self, lookup: LookupAnswer, cloud: CloudAnswer | None):
        self.resources: list[PlannedResource] = []
        self.lookups: list[dict[str, Any]] = []
        self.lookup = lookup
        self.cloud = cloud

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(
            PlannedResource(
                type=args.typ,
                name=args.name,
                inputs=_clean(args.inputs),
                raw_inputs=dict(args.inputs),
            )
        )
        if self.cloud is None:
            # An empty id in preview leaves the id unknown, as a real preview does.
            return "", dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, **self.cloud(args)}

    def call(
        self, args: MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.lookups.append({"token": args.token, "args": _clean(args.args)})
        return self.lookup(args.token, args.args), []


def _clean(value: Any) -> Any:
    """Inputs as plain JSON: secrets hidden, unknowns named."""
    if isinstance(value, Mapping):
        if value.get(_special_sig_key) == _special_secret_sig:
            return SECRET_TEXT
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN):
        return UNKNOWN_TEXT
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Program = Callable[[], Mapping[str, Any] | None]


def record(
    program: Program,
    stack: str,
    lookup: LookupAnswer,
    cloud: CloudAnswer | None = None,
    project: str = "skyward",
) -> Plan:
    """Run ``program`` under Pulumi's mocks and return what it declared.

    Without ``cloud`` the run is a preview: what only the cloud knows stays
    unknown. With it, each resource's outputs are its inputs plus what
    ``cloud`` answers for it, as after an ``up``.
    """
    with _lock:
        recorder = _Recorder(lookup, cloud)
        outputs: dict[str, PlannedOutput] = {}

        async def collect(declared: Mapping[str, Any]) -> None:
            for name, value in declared.items():
                output = pulumi.Output.from_input(value)
                known = await output.is_known()
                outputs[name] = PlannedOutput(
                    value=_clean(await output.future(with_unknowns=True)),
                    secret=await output.is_secret(),
                    known=known,
                )

        def body() -> Any:
            return asyncio.ensure_future(collect(program() or {}))

        # The mocked runtime drives an event loop on this thread; a fresh one
        # per plan, set before the mocks create the root stack resource on it.
        previous = _current_loop()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.set_mocks(
                recorder, project=project, stack=stack, preview=True
            )
            _run_under_mocks(body)()
        finally:
            loop.close()
            asyncio.set_event_loop(previous)
        return Plan(
            stack=stack,
            resources=recorder.resources,
            lookups=recorder.lookups,
            outputs=outputs,
        )


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None
