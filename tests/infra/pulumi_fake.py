"""The Automation API replaced at its boundary, with a backend kept in memory.

:class:`FakeApi` offers what :class:`skyward.infra.engine.Engine` uses of
``pulumi.automation`` (``create_stack``, ``select_stack``, ``LocalWorkspace``,
``PulumiCommand``) and hands back the SDK's own value and error classes.
``up`` runs the program it was given, Skyward's ``program_from_config``,
under Pulumi's mocks with the stack's config, so the outputs are the
program's own; a workspace's config is kept per work dir, and only
``refresh_config`` brings the config of the last update from the backend,
as with the real CLI. Nothing here runs the real engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi import automation as auto

from skyward.infra.plan import PlannedResource, record

SECRET_KEYS = {"skyward:sshPrivateKey", "skyward:hostPrivateKey"}


def error(cls: type[auto.CommandError], stderr: str, stdout: str = "") -> Exception:
    return cls(auto.CommandResult(stdout=stdout, stderr=stderr, code=255))


def answer_cloud(args: Any) -> dict[str, Any]:
    if args.typ == "aws:ec2/instance:Instance":
        index = int(args.name.split("-")[1])
        return {
            "publicIp": f"198.51.100.{10 + index}",
            "privateIp": f"10.0.0.{10 + index}",
        }
    return {}


def answer_lookup(token: str, args: Any) -> dict[str, Any]:
    return {"id": "ami-0123456789abcdef0"}


@dataclass
class StackState:
    deployed_config: dict[str, str] | None = None
    outputs: dict[str, auto.OutputValue] = field(default_factory=dict)
    resources: list[PlannedResource] = field(default_factory=list)
    last_update: dt.datetime | None = None
    pending_operations: list[dict[str, Any]] = field(default_factory=list)
    update_in_progress: bool = False


@dataclass
class FakeBackend:
    """What a Pulumi backend holds, and the faults a test asks for."""

    stacks: dict[str, StackState] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    up_failures: list[str] = field(default_factory=list)
    destroy_failures: dict[str, str] = field(default_factory=dict)
    up_hook: Callable[[FakeStack], None] | None = None
    # (work dir, stack) -> config, as Pulumi.<stack>.yaml files would hold it
    local_config: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def ops(self, op: str) -> list[str]:
        return [name for kind, name in self.calls if kind == op]


def _event(kind: str, op: str, resource: PlannedResource, seq: int) -> auto.EngineEvent:
    urn = f"urn:pulumi:stack::skyward::{resource.type}::{resource.name}"
    meta = {"op": op, "urn": urn, "type": resource.type, "provider": ""}
    return auto.EngineEvent.from_json(
        {"sequence": seq, "timestamp": seq, kind: {"metadata": meta}}
    )


class FakeWorkspace:
    def __init__(self, api: FakeApi, work_dir: str):
        self.api = api
        self.work_dir = work_dir

    @property
    def backend(self) -> FakeBackend:
        return self.api.backend

    def _state(self, name: str) -> StackState:
        if name not in self.backend.stacks:
            raise error(
                auto.StackNotFoundError, f"error: no stack named '{name}' found"
            )
        return self.backend.stacks[name]

    def list_stacks(self, include_all: bool | None = None) -> list[auto.StackSummary]:
        return [
            auto.StackSummary(
                name=f"organization/skyward/{name}",
                current=False,
                update_in_progress=state.update_in_progress,
                last_update=state.last_update,
                resource_count=len(state.resources),
            )
            for name, state in self.backend.stacks.items()
        ]

    def stack_outputs(self, name: str) -> dict[str, auto.OutputValue]:
        return dict(self._state(name).outputs)

    def remove_stack(self, name: str, force: bool | None = None) -> None:
        state = self._state(name)
        if state.resources and not force:
            raise error(
                auto.CommandError,
                f"error: '{name}' still has resources; removal rejected",
            )
        self.backend.calls.append(("remove", name))
        del self.backend.stacks[name]

    def refresh_config(self, name: str) -> None:
        state = self._state(name)
        self.backend.calls.append(("refresh_config", name))
        self.backend.local_config[(self.work_dir, name)] = dict(
            state.deployed_config or {}
        )

    def config(self, name: str) -> dict[str, str]:
        return self.backend.local_config.setdefault((self.work_dir, name), {})


class FakeStack:
    def __init__(self, api: FakeApi, name: str, program: Any, work_dir: str):
        self.name = name
        self.program = program
        self.workspace = FakeWorkspace(api, work_dir)
        self.backend = api.backend

    @property
    def state(self) -> StackState:
        return self.workspace._state(self.name)

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        return {
            key: auto.ConfigValue(value=value, secret=key in SECRET_KEYS)
            for key, value in self.workspace.config(self.name).items()
        }

    def set_all_config(self, config: Mapping[str, auto.ConfigValue]) -> None:
        for key, value in config.items():
            assert value.secret == (key in SECRET_KEYS), key
        self.workspace.config(self.name).update(
            {key: value.value for key, value in config.items()}
        )

    def refresh_config(self) -> None:
        self.workspace.refresh_config(self.name)

    def outputs(self) -> dict[str, auto.OutputValue]:
        return dict(self.state.outputs)

    def up(
        self,
        on_event: Callable[[auto.EngineEvent], Any] | None = None,
        on_output: Callable[[str], Any] | None = None,
        **_: Any,
    ) -> auto.UpResult:
        state = self.state
        self.backend.calls.append(("up", self.name))
        emit = on_event or (lambda event: None)
        if self.backend.up_hook is not None:
            self.backend.up_hook(self)
        config = dict(self.workspace.config(self.name))
        plan = self._run_program(config)
        if self.backend.up_failures:
            message = self.backend.up_failures.pop(0)
            # The engine had made the first resources before the failure.
            instances = sorted(
                (r for r in plan.resources if r.type == "aws:ec2/instance:Instance"),
                key=lambda r: r.name,
            )
            made = [r for r in plan.resources if r not in instances]
            for seq, resource in enumerate(made):
                emit(_event("resourcePreEvent", "create", resource, seq))
                emit(_event("resOutputsEvent", "create", resource, seq))
            failed = instances[0]
            emit(_event("resourcePreEvent", "create", failed, 90))
            emit(_event("resOpFailedEvent", "create", failed, 91))
            state.resources = made
            if on_output:
                on_output(f"error: {message}\n")
            raise error(auto.CommandError, "error: update failed", stdout=message)
        before = {(r.type, r.name) for r in state.resources}
        for seq, resource in enumerate(plan.resources):
            op = "same" if (resource.type, resource.name) in before else "create"
            emit(_event("resourcePreEvent", op, resource, 2 * seq))
            emit(_event("resOutputsEvent", op, resource, 2 * seq + 1))
        state.resources = plan.resources
        state.outputs = {
            name: auto.OutputValue(value=out.value, secret=out.secret)
            for name, out in plan.outputs.items()
        }
        state.deployed_config = config
        state.last_update = dt.datetime.now(dt.UTC)
        summary = auto.UpdateSummary(
            kind="update",
            start_time=state.last_update,
            message="",
            environment={},
            config={},
            result="succeeded",
            resource_changes={auto.OpType.CREATE: len(plan.resources) - len(before)},
        )
        return auto.UpResult(
            stdout="", stderr="", summary=summary, outputs=state.outputs
        )

    def _run_program(self, config: dict[str, str]) -> Any:
        exported: dict[str, Any] = {}
        pulumi.runtime.set_all_config(
            config, secret_keys=[k for k in config if k in SECRET_KEYS]
        )

        def body() -> dict[str, Any]:
            original = pulumi.export
            pulumi.export = exported.__setitem__  # type: ignore[assignment]
            try:
                self.program()
            finally:
                pulumi.export = original
            return exported

        try:
            return record(
                body, stack=self.name, lookup=answer_lookup, cloud=answer_cloud
            )
        finally:
            pulumi.runtime.set_all_config({})

    def destroy(
        self,
        on_event: Callable[[auto.EngineEvent], Any] | None = None,
        on_output: Callable[[str], Any] | None = None,
        **_: Any,
    ) -> auto.DestroyResult:
        state = self.state
        self.backend.calls.append(("destroy", self.name))
        if self.name in self.backend.destroy_failures:
            message = self.backend.destroy_failures[self.name]
            raise error(auto.CommandError, f"error: {message}")
        for seq, resource in enumerate(reversed(state.resources)):
            if on_event:
                on_event(_event("resourcePreEvent", "delete", resource, seq))
        state.resources = []
        state.outputs = {}
        summary = auto.UpdateSummary(
            kind="destroy",
            start_time=dt.datetime.now(dt.UTC),
            message="",
            environment={},
            config={},
            result="succeeded",
        )
        return auto.DestroyResult(stdout="", stderr="", summary=summary)

    def export_stack(self) -> auto.Deployment:
        state = self.state
        return auto.Deployment(
            version=3,
            deployment={
                "manifest": {},
                "resources": [{"urn": r.name, "type": r.type} for r in state.resources],
                "pending_operations": list(state.pending_operations),
            },
        )

    def import_stack(self, deployment: auto.Deployment) -> None:
        self.backend.calls.append(("import", self.name))
        assert deployment.deployment is not None
        self.state.pending_operations = list(
            deployment.deployment["pending_operations"]
        )


class FakeApi:
    """Stands in for the ``pulumi.automation`` module."""

    CommandError = auto.CommandError
    StackNotFoundError = auto.StackNotFoundError
    ConcurrentUpdateError = auto.ConcurrentUpdateError
    ConfigValue = auto.ConfigValue
    Deployment = auto.Deployment
    LocalWorkspaceOptions = auto.LocalWorkspaceOptions
    ProjectSettings = auto.ProjectSettings
    ProjectBackend = auto.ProjectBackend

    def __init__(self, backend: FakeBackend):
        self.backend = backend
        self.commands: list[str | None] = []

    def PulumiCommand(self, root: str | None = None) -> Any:
        self.commands.append(root)
        return ("pulumi-command", root)

    def create_stack(
        self,
        name: str,
        project_name: str | None = None,
        program: Any = None,
        work_dir: str | None = None,
        opts: Any = None,
    ) -> FakeStack:
        assert project_name == "skyward"
        if name in self.backend.stacks:
            raise error(
                auto.StackAlreadyExistsError, f"error: stack '{name}' already exists"
            )
        self.backend.calls.append(("create", name))
        self.backend.stacks[name] = StackState()
        return FakeStack(self, name, program, opts.work_dir)

    def select_stack(
        self,
        name: str,
        project_name: str | None = None,
        program: Any = None,
        work_dir: str | None = None,
        opts: Any = None,
    ) -> FakeStack:
        if name not in self.backend.stacks:
            raise error(
                auto.StackNotFoundError, f"error: no stack named '{name}' found"
            )
        return FakeStack(self, name, program, opts.work_dir)

    def LocalWorkspace(self, work_dir: str | None = None, **_: Any) -> FakeWorkspace:
        assert work_dir is not None
        return FakeWorkspace(self, work_dir)
