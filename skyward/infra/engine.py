"""The Pulumi engine: the Automation API with Skyward's state, secrets and events.

::

    ~/.skyward/                     (SKYWARD_HOME)
      passphrase                    0600, made once unless SKYWARD_PASSPHRASE is set
      state/                        default backend, file://~/.skyward/state
      stacks/<name>/                one Automation API workspace per stack

Every stack belongs to the Pulumi project ``skyward`` and runs
:func:`skyward.infra.stacks.program_from_config` inline, so its config is
its whole description. ``SKYWARD_BACKEND`` (or ``backend=``) points the
state anywhere Pulumi can keep it, ``s3://bucket/prefix`` for a team.

:class:`PoolStack` is one pool's life on a stack: create or reuse, refuse
spec drift, ``up`` with the engine's events turned into Skyward events,
``destroy`` after a failed ``up``, and on exit ``destroy`` then remove.
The Automation API blocks; async callers go through :func:`call_engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil
from pulumi import automation as auto

from skyward import events
from skyward.errors import PulumiNotFoundError, StackDriftError, StackError
from skyward.infra.stacks import POOL, SECRET_KEYS, program_from_config

log = logging.getLogger(__name__)

PROJECT = "skyward"
T = TypeVar("T")

INSTALL_HELP = (
    "Skyward runs cloud pools as Pulumi stacks and needs the `pulumi` command, "
    "which was not found on PATH or in ~/.pulumi/bin. Install it with Pulumi's "
    "installer (`curl -fsSL https://get.pulumi.com | sh`, see "
    "https://www.pulumi.com/docs/install/) or with `skyward install-pulumi`, "
    "then run the pool again. `skyward plan` works without it."
)

# Messages with which EC2 refuses a launch for want of capacity or quota.
CAPACITY_ERRORS = (
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "UnfulfillableCapacity",
    "capacity-not-available",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
)


def find_pulumi() -> Path:
    """The ``pulumi`` executable, or PulumiNotFoundError saying how to get it."""
    found = shutil.which("pulumi")
    if found:
        return Path(found)
    installed = Path("~/.pulumi/bin/pulumi").expanduser()
    if installed.is_file() and os.access(installed, os.X_OK):
        return installed
    raise PulumiNotFoundError(INSTALL_HELP)


@dataclass(frozen=True)
class EngineSettings:
    """Where state and workspaces live, and the passphrase of the secrets."""

    home: Path
    backend: str
    passphrase: str

    @classmethod
    def load(
        cls, backend: str | None = None, home: Path | None = None
    ) -> EngineSettings:
        home = (home or Path(os.environ.get("SKYWARD_HOME", "~/.skyward"))).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        url = backend or os.environ.get("SKYWARD_BACKEND") or f"file://{home}/state"
        if url.startswith("file://"):
            path = Path(url.removeprefix("file://")).expanduser()
            path.mkdir(parents=True, exist_ok=True)
            url = f"file://{path}"
        return cls(home=home, backend=url, passphrase=_passphrase(home))

    @property
    def passphrase_file(self) -> Path:
        return self.home / "passphrase"


def _passphrase(home: Path) -> str:
    """``SKYWARD_PASSPHRASE``, or one generated on first use and kept 0600."""
    given = os.environ.get("SKYWARD_PASSPHRASE")
    if given:
        return given
    path = home / "passphrase"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class Engine:
    """Opens, lists and destroys Skyward's stacks through the Automation API.

    ``api`` is the Automation API module; tests replace it at this boundary.
    """

    def __init__(self, settings: EngineSettings | None = None, api: Any = None):
        self.settings = settings or EngineSettings.load()
        self.api: Any = api if api is not None else auto
        self._command: Any = None

    def command(self) -> Any:
        """The Pulumi CLI the workspaces run; checked before anything else."""
        if self._command is None:
            path = find_pulumi()
            on_path = shutil.which("pulumi") == str(path)
            root = None if on_path else str(path.parent.parent)
            self._command = self.api.PulumiCommand(root=root)
        return self._command

    def workspace_dir(self, name: str) -> Path:
        path = self.settings.home / "stacks" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def options(self, name: str) -> Any:
        backend = self.settings.backend
        return self.api.LocalWorkspaceOptions(
            work_dir=str(self.workspace_dir(name)),
            pulumi_command=self.command(),
            secrets_provider="passphrase",
            env_vars={
                "PULUMI_CONFIG_PASSPHRASE": self.settings.passphrase,
                "PULUMI_BACKEND_URL": backend,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
            },
            project_settings=self.api.ProjectSettings(
                name=PROJECT,
                runtime="python",
                backend=self.api.ProjectBackend(url=backend),
            ),
        )

    def create(self, name: str) -> Any:
        log.info("Creating stack %s in %s", name, self.settings.backend)
        return self.api.create_stack(
            name,
            project_name=PROJECT,
            program=program_from_config,
            opts=self.options(name),
        )

    def select(self, name: str) -> Any | None:
        """The stack of that name, or None when the backend has none."""
        try:
            return self.api.select_stack(
                name,
                project_name=PROJECT,
                program=program_from_config,
                opts=self.options(name),
            )
        except self.api.StackNotFoundError:
            return None

    def workspace(self) -> Any:
        """A workspace of the project with no stack of its own, for listing."""
        options = self.options("_")
        return self.api.LocalWorkspace(
            work_dir=options.work_dir,
            pulumi_command=options.pulumi_command,
            env_vars=options.env_vars,
            secrets_provider=options.secrets_provider,
            project_settings=options.project_settings,
        )

    def list_stacks(self) -> list[Any]:
        """Summaries of every Skyward stack in the backend."""
        return list(self.workspace().list_stacks())

    def destroy(
        self, stack: Any, on_event: Callable[[Any], None] | None = None
    ) -> None:
        """Destroy every resource of ``stack``, then remove it and its workspace."""
        name = stack.name
        log.info("Destroying stack %s", name)
        try:
            stack.destroy(on_event=on_event, on_output=_debug_output)
        except self.api.CommandError as exc:
            raise StackError(
                name,
                "destroy",
                str(exc),
                hint=(
                    f"Its resources may still exist; retry with `skyward down {name}` "
                    "or look for resources tagged skyward:pool in the console."
                ),
            ) from exc
        stack.workspace.remove_stack(name)
        shutil.rmtree(self.settings.home / "stacks" / name, ignore_errors=True)
        log.info("Stack %s destroyed and removed", name)


def _debug_output(line: str) -> None:
    log.debug("pulumi: %s", line.rstrip())


def is_capacity_error(text: str) -> bool:
    return any(marker in text for marker in CAPACITY_ERRORS)


def drift(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every top-level field that differs."""
    lines = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if old != new:
            lines.append(f"{key}: {json.dumps(old)} -> {json.dumps(new)}")
    return lines


class PoolStack:
    """One pool's stack: create or reuse it, bring it up, take it down.

    ``named`` stacks are reused across runs and kept on exit unless ``keep``
    is False; ephemeral ones are destroyed and removed on exit unless
    ``keep`` is True. A stack this object created is destroyed again when
    its ``up`` fails or is interrupted, whatever its kind.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        named: bool,
        emit: Callable[[events.SkywardEvent], None],
        pool: str = "",
        keep: bool | None = None,
    ):
        self.engine = engine
        self.name = name
        self.named = named
        self.emit = emit
        self.pool = pool or name
        self.keep = named if keep is None else keep
        self.stack: Any = None
        self.created_here = False
        self.ready = False
        self.gone = False

    def stored_config(self) -> dict[str, str] | None:
        """The config of an existing named stack, or None when it is new.

        A teammate's machine has no local copy: it is fetched from the
        stack's last update in the backend.
        """
        if not self.named:
            return None
        stack = self.engine.select(self.name)
        if stack is None:
            return None
        self.stack = stack
        config = stack.get_all_config()
        if POOL not in config:
            stack.refresh_config()
            config = stack.get_all_config()
        return {key: value.value for key, value in config.items()}

    def up(
        self,
        config: Mapping[str, str],
        fingerprint: Mapping[str, Any],
        update: bool = False,
    ) -> dict[str, Any]:
        """Bring the stack to ``config``; return its output values.

        An existing named stack whose stored fingerprint matches is reused
        as is; one that differs is refused unless ``update``.
        """
        wanted = {**config, POOL: json.dumps(dict(fingerprint), sort_keys=True)}
        if self.stack is None and self.named:
            self.stored_config()
        if self.stack is not None:
            stored = {k: v.value for k, v in self.stack.get_all_config().items()}
            differences = drift(json.loads(stored.get(POOL, "{}")), fingerprint)
            if differences and not update:
                raise StackDriftError(self.name, differences)
            outputs = self._outputs()
            if not differences and stored == wanted and outputs.get("nodes"):
                log.info("Reusing stack %s as it is", self.name)
                self.ready = True
                return outputs
            log.info(
                "Updating stack %s: %s",
                self.name,
                "; ".join(differences) or "same spec, config refreshed",
            )
        else:
            self.stack = self.engine.create(self.name)
            self.created_here = True
        self._set_config(wanted)
        try:
            self._up()
        except BaseException:
            if self.created_here:
                self._destroy_quietly()
            raise
        self.ready = True
        return self._outputs()

    def _set_config(self, config: Mapping[str, str]) -> None:
        api = self.engine.api
        self.stack.set_all_config(
            {
                key: api.ConfigValue(value=value, secret=key in SECRET_KEYS)
                for key, value in config.items()
            }
        )

    def _up(self) -> None:
        log.info("Running pulumi up on stack %s", self.name)
        output: list[str] = []

        def on_output(line: str) -> None:
            output.append(line)
            _debug_output(line)

        try:
            result = self.stack.up(on_event=self._on_event, on_output=on_output)
        except self.engine.api.CommandError as exc:
            text = "".join(output) + "\n" + str(exc)
            raise StackError(
                self.name, "up", text, capacity_refused=is_capacity_error(text)
            ) from exc
        changes = getattr(result.summary, "resource_changes", None) or {}
        log.info("Stack %s is up: %s", self.name, dict(changes))

    def _outputs(self) -> dict[str, Any]:
        return {key: value.value for key, value in self.stack.outputs().items()}

    def _on_event(self, event: Any) -> None:
        progress = stack_progress(event, self.name, self.pool)
        if progress is not None:
            self.emit(progress)

    def teardown(self) -> None:
        """Destroy and remove the stack unless it is to be kept; safe twice."""
        if self.gone or self.stack is None:
            return
        abandoned = self.created_here and not self.ready
        if self.keep and not abandoned:
            log.info(
                "Keeping stack %s; `skyward down %s` removes it", self.name, self.name
            )
            self.gone = True
            return
        self.engine.destroy(self.stack, on_event=self._on_event)
        self.gone = True

    def _destroy_quietly(self) -> None:
        """Destroy after a failed ``up``; the ``up`` error is the one to report."""
        try:
            self.engine.destroy(self.stack, on_event=self._on_event)
        except Exception:
            log.exception(
                "Could not destroy stack %s after its failed up; run `skyward down %s`",
                self.name,
                self.name,
            )
            return
        # Gone from the backend: a retry (spot to on-demand) starts afresh.
        self.stack = None
        self.created_here = False


def stack_progress(event: Any, stack: str, pool: str) -> events.StackProgress | None:
    """An engine event as a Skyward event; None for what users need not see."""
    status: Literal["started", "done", "failed"]
    if event.resource_pre_event is not None:
        meta, status = event.resource_pre_event.metadata, "started"
    elif event.res_outputs_event is not None:
        meta, status = event.res_outputs_event.metadata, "done"
    elif event.res_op_failed_event is not None:
        meta, status = event.res_op_failed_event.metadata, "failed"
    elif (
        event.diagnostic_event is not None
        and event.diagnostic_event.severity == "error"
    ):
        diag = event.diagnostic_event
        urn = diag.urn or ""
        return events.StackProgress(
            pool=pool,
            stack=stack,
            resource=urn.rsplit("::", 1)[-1],
            type=urn.rsplit("::", 2)[-2] if urn.count("::") >= 2 else "",
            op="diagnostic",
            status="failed",
            message=diag.message.strip(),
        )
    else:
        return None
    op = getattr(meta.op, "value", str(meta.op))
    if op == "same" or meta.type == "pulumi:pulumi:Stack":
        return None
    return events.StackProgress(
        pool=pool,
        stack=stack,
        resource=meta.urn.rsplit("::", 1)[-1],
        type=meta.type,
        op=op,
        status=status,
    )


def interrupt_pulumi() -> int:
    """Ask the ``pulumi`` processes this process started to stop; return how many.

    SIGINT makes the CLI cancel gracefully, recording what it had done, so
    the ``destroy`` that follows knows every resource it must remove.
    """
    count = 0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "pulumi":
                child.send_signal(signal.SIGINT)
                count += 1
    return count


async def call_engine(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking engine call in a thread; on cancel, interrupt it and wait.

    The caller's cancellation propagates only once the engine has stopped,
    so the teardown that follows never races a running ``up``.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stopped = interrupt_pulumi()
        log.warning("Interrupted the Pulumi engine (%d process(es))", stopped)
        with contextlib.suppress(BaseException):
            await task
        raise
