"""The bootstrap: from an :class:`~skyward.spec.Image` to a ready node.

Runs on every node in parallel, over SSH, after the runtime upload and
before the workers start (``Cluster.prepare``). Each step is one shell
script, reported as a :class:`~skyward.events.BootstrapProgress` event:

    mount volumes  mount the pool's S3 volumes with s3fs (cluster/volumes.py)
    uv      install uv when the node has none
    apt     system packages (clouds; on Local they are only checked)
    mig     enable MIG and create the layout; pin one device per slot
    gpu     read the node's GPUs for ``instance_info().devices``
    python  a fresh environment with the requested Python
    pip     cloudpickle (the client's version) and ``Image.pip``
    setup   each ``Image.setup`` command, with the environment active

``python`` and ``pip`` build an environment cached by a hash of what it
holds (``~/.skyward/envs/<hash>`` on the node): a node that has it already
skips them, which is what makes a second pool on a named node, or on Local,
start without reinstalling. ``setup`` commands run on every pool start.

On Local the node is this machine. Its environment is a venv of the
client's interpreter that also sees the client's site-packages, and pip
installs into it only what the client does not already have; ``apt``
packages are checked before anything starts. Script generation is pure:
the functions below are tested without SSH.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh
import cloudpickle

from skyward import events
from skyward.cluster.cluster import Node
from skyward.cluster.devices import (
    GPU_QUERY,
    assign_mig_slots,
    local_has,
    mig_script,
    parse_gpu_query,
    parse_mig_listing,
)
from skyward.cluster.volumes import (
    STEP_MOUNT,
    VolumePlan,
    mount_hint,
    mount_script,
    plan_volumes,
    release_local,
)
from skyward.errors import BootstrapError, ConfigurationError
from skyward.spec import Image, PoolSpec
from skyward.spec.accelerators import AcceleratorSpec

log = logging.getLogger(__name__)

# Bump when the scripts change what an environment contains.
ENV_FORMAT = 1
READY_MARK = ".skyward-ready"
UV_INSTALLER = "https://astral.sh/uv/install.sh"
_SUDO = 'SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"'

Installer = Literal["pip", "uv"]


def skyward_home() -> Path:
    """Where Skyward keeps state on this machine: ``$SKYWARD_HOME`` or ~/.skyward."""
    return Path(os.environ.get("SKYWARD_HOME") or Path.home() / ".skyward")


def client_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def client_site_dirs() -> tuple[str, ...]:
    """The site-packages folders the client imports from, in its order."""
    return tuple(
        p
        for p in sys.path
        if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()
    )


@dataclass(frozen=True)
class Step:
    """One bootstrap step: a shell script and what to say if it fails."""

    name: str
    script: str
    hint: str = ""


@dataclass(frozen=True)
class Plan:
    """What the bootstrap does on each node of one pool.

    ``env_dir`` is where the environment lives (shell syntax: on a cloud node
    it starts with ``$HOME``), or "" when no environment is built (Local with
    nothing to install runs the client's interpreter). ``python`` is the
    version uv asks for on a cloud node, or the interpreter to copy on Local.
    """

    image: Image
    local: bool
    key: str
    env_dir: str
    home: str
    python: str
    installer: Installer
    site_dirs: tuple[str, ...] = ()
    accelerator: AcceleratorSpec | None = None
    # Local asked for a GPU this machine lacks: workers report none.
    without_accelerator: bool = False
    slots: int = 1
    volumes: VolumePlan | None = None

    @property
    def builds_environment(self) -> bool:
        return bool(self.env_dir)

    @property
    def requirements(self) -> list[str]:
        return [f"cloudpickle=={cloudpickle.__version__}", *self.image.pip]

    @property
    def is_empty(self) -> bool:
        """Nothing to do on any node: Local with a bare Image."""
        return (
            not self.builds_environment
            and not self.image.setup
            and self.accelerator is None
            and not self.without_accelerator
            and self.volumes is None
        )


def environment_key(*parts: object) -> str:
    """A short stable hash of what makes an environment what it is."""
    raw = json.dumps([ENV_FORMAT, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def plan_bootstrap(spec: PoolSpec, *, local: bool) -> Plan:
    """Check the Image against where it will run and decide the steps.

    Raises ConfigurationError before anything is created: a Python version
    other than the client's (cloudpickle needs both ends equal), or, on
    Local, system packages this machine lacks.
    """
    image = spec.image
    here = client_python()
    if image.python is not None and image.python != here:
        raise ConfigurationError(
            f"Image(python={image.python!r}) differs from this client's Python "
            f"{here}; cloudpickle needs the same major.minor on both ends. Leave "
            f"python out to get {here}, or run the client on Python {image.python}."
        )
    pip = sorted(image.pip)
    mounts = plan_volumes(spec.volumes, local=local)
    if local:
        missing = missing_system_packages(image.apt)
        if missing:
            raise ConfigurationError(
                f"Image(apt=[...]) asks for {', '.join(map(repr, missing))}, which "
                "this machine does not have. Local nodes run on this machine and "
                "do not install system packages: install them yourself (`sudo "
                f"apt-get install {' '.join(missing)}`) or drop them from the Image."
            )
        installer: Installer = (
            "pip" if importlib.util.find_spec("pip") is not None else "uv"
        )
        sites = client_site_dirs()
        interpreter = os.path.realpath(sys.executable)
        key = environment_key(
            here, pip, interpreter, sites, cloudpickle.__version__, installer
        )
        home = str(skyward_home())
        env_dir = str(skyward_home() / "envs" / key) if pip else ""
        accel = spec.accelerator
        present = accel is not None and local_has(accel)
        return Plan(
            image=image,
            local=True,
            key=key,
            env_dir=env_dir,
            home=home,
            python=interpreter,
            installer=installer,
            site_dirs=sites,
            accelerator=accel if present else None,
            without_accelerator=accel is not None and not present,
            slots=spec.concurrency,
            volumes=mounts,
        )
    key = environment_key(here, pip, sorted(image.apt), cloudpickle.__version__)
    return Plan(
        image=image,
        local=False,
        key=key,
        env_dir=f"$HOME/.skyward/envs/{key}",
        home="$HOME/.skyward",
        python=here,
        installer="uv",
        accelerator=spec.accelerator,
        slots=spec.concurrency,
        volumes=mounts,
    )


def missing_system_packages(packages: tuple[str, ...]) -> list[str]:
    """The packages of ``packages`` this machine does not have installed.

    Asks dpkg where there is one; elsewhere a package counts as present
    when a command of that name is on PATH.
    """
    if not packages:
        return []
    dpkg = shutil.which("dpkg-query")
    missing = []
    for name in packages:
        base = name.split("=")[0]
        if dpkg:
            result = subprocess.run(
                [dpkg, "-W", "-f=${Status}", base],
                capture_output=True,
                text=True,
                check=False,
            )
            present = "ok installed" in result.stdout
        else:
            present = shutil.which(base) is not None
        if not present:
            missing.append(name)
    return missing


# -- scripts -----------------------------------------------------------------


def _q(path: str) -> str:
    """Quote a path for the shell, leaving a leading ``$HOME`` to expand."""
    if path.startswith("$HOME/"):
        return '"$HOME"/' + shlex.quote(path[len("$HOME/") :])
    return shlex.quote(path)


def _prelude(plan: Plan) -> list[str]:
    home = _q(plan.home)
    return ["set -e", f'export PATH={home}/bin:"$HOME/.local/bin:$PATH"']


def probe_script(plan: Plan) -> str:
    """Print where the environment is, whether it is ready, and the PATH."""
    env = _q(plan.env_dir) if plan.builds_environment else '""'
    return "\n".join(
        [
            *_prelude(plan),
            f"ENV={env}",
            'echo "SKYWARD_ENV=$ENV"',
            f'if [ -n "$ENV" ] && [ -f "$ENV/{READY_MARK}" ]; then',
            "  echo SKYWARD_READY=1",
            "else",
            "  echo SKYWARD_READY=0",
            "fi",
            'echo "SKYWARD_PATH=$PATH"',
        ]
    )


def uv_script(plan: Plan) -> str:
    """Install uv into the Skyward home unless one is on PATH already."""
    home = _q(plan.home)
    return "\n".join(
        [
            *_prelude(plan),
            "if command -v uv >/dev/null 2>&1; then uv --version; exit 0; fi",
            f"export UV_INSTALL_DIR={home}/bin UV_NO_MODIFY_PATH=1",
            "if command -v curl >/dev/null 2>&1; then",
            f"  curl -LsSf {UV_INSTALLER} | sh",
            "elif command -v wget >/dev/null 2>&1; then",
            f"  wget -qO- {UV_INSTALLER} | sh",
            "else",
            "  python3 -m pip install --user uv",
            "fi",
            "uv --version",
        ]
    )


def apt_script(packages: tuple[str, ...]) -> str:
    names = " ".join(shlex.quote(p) for p in packages)
    return "\n".join(
        [
            "set -e",
            _SUDO,
            "export DEBIAN_FRONTEND=noninteractive",
            "$SUDO apt-get update -qq",
            f"$SUDO apt-get install -y -qq --no-install-recommends {names}",
        ]
    )


def python_script(plan: Plan, env_dir: str) -> str:
    """Create a fresh environment at ``env_dir`` (an absolute path)."""
    env = shlex.quote(env_dir)
    lines = [*_prelude(plan), f"ENV={env}", 'rm -rf "$ENV"', 'mkdir -p "$ENV"']
    if plan.local:
        # The client's interpreter, seeing the client's packages through a
        # .pth file: pip then installs only what the client lacks.
        dirs = json.dumps(list(plan.site_dirs))
        pth = f"import site; list(map(site.addsitedir, {dirs}))"
        lines += [
            f'{shlex.quote(plan.python)} -m venv --without-pip "$ENV"',
            'SITE=$("$ENV/bin/python" -c '
            "'import sysconfig; print(sysconfig.get_path(\"purelib\"))')",
            f'printf "%s\\n" {shlex.quote(pth)} > "$SITE/_skyward_client.pth"',
        ]
    else:
        lines.append(f'uv venv --python {shlex.quote(plan.python)} "$ENV"')
    lines.append('"$ENV/bin/python" --version')
    return "\n".join(lines)


def pip_script(plan: Plan, env_dir: str) -> str:
    """Install cloudpickle and ``Image.pip``; mark the environment ready."""
    reqs = " ".join(shlex.quote(r) for r in plan.requirements)
    if plan.installer == "pip":
        install = (
            '"$ENV/bin/python" -m pip install --disable-pip-version-check '
            f"--no-input {reqs}"
        )
    else:
        install = f'uv pip install --python "$ENV/bin/python" {reqs}'
    listing = json.dumps(plan.requirements)
    return "\n".join(
        [
            *_prelude(plan),
            f"ENV={shlex.quote(env_dir)}",
            install,
            f'printf "%s\\n" {shlex.quote(listing)} > "$ENV/{READY_MARK}"',
        ]
    )


def setup_script(plan: Plan, env_dir: str, command: str) -> str:
    """Run one setup command with the environment and Image.env in place."""
    lines = [*_prelude(plan)]
    if env_dir:
        env = shlex.quote(env_dir)
        lines.append(f'export VIRTUAL_ENV={env} PATH={env}/bin:"$PATH"')
    lines += [f"export {k}={shlex.quote(v)}" for k, v in plan.image.env.items()]
    lines.append(command)
    return "\n".join(lines)


def step_label(command: str) -> str:
    """``setup: <command>``, shortened to fit one line of a progress display."""
    one_line = " ".join(command.split())
    return "setup: " + (one_line if len(one_line) <= 60 else one_line[:57] + "...")


# -- running -----------------------------------------------------------------

_local_locks: dict[str, asyncio.Lock] = {}


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Bootstrap:
    """Runs a :class:`Plan` on nodes; ``prepare`` is the Cluster hook."""

    def __init__(
        self, plan: Plan, pool: str, emit: Callable[[events.SkywardEvent], None]
    ):
        self.plan = plan
        self.pool = pool
        self.emit = emit
        # Local: the first node to get there mounts for all (one machine).
        self._local_mount: asyncio.Task[None] | None = None
        self._started = False

    @classmethod
    def for_spec(
        cls,
        spec: PoolSpec,
        pool: str,
        emit: Callable[[events.SkywardEvent], None],
        *,
        local: bool,
    ) -> Bootstrap:
        return cls(plan_bootstrap(spec, local=local), pool, emit)

    async def prepare(self, node: Node) -> None:
        """Bring one node to the Image: steps in order, each reported."""
        plan = self.plan
        if plan.is_empty:
            return
        if plan.volumes is not None:
            await self._mount(node, plan.volumes)
        if plan.without_accelerator:
            for slot in range(plan.slots):
                node.slot_info[slot] = {
                    "accelerator": None,
                    "accelerator_count": 0,
                    "accelerator_memory_gb": 0.0,
                }
        accel = plan.accelerator
        if accel is not None and accel.mig and not plan.local:
            await self._mig(node, accel)
        elif accel is not None:
            await self._gpus(node, accel)
        env_dir = ""
        if plan.builds_environment:
            if plan.local:
                env_dir = await self._local_environment(node)
            else:
                env_dir = await self._environment(node)
        for command in plan.image.setup:
            await self._step(
                node,
                Step(
                    step_label(command),
                    setup_script(plan, env_dir, command),
                    f"The setup command was: {command}",
                ),
            )

    async def _mount(self, node: Node, mounts: VolumePlan) -> None:
        if not mounts.local:
            await self._mount_on(node, mounts)
            return
        if self._local_mount is None:
            self._local_mount = asyncio.ensure_future(self._mount_on(node, mounts))
            await asyncio.shield(self._local_mount)
            return
        # Another node of this pool mounts on this same machine: wait for it.
        started = time.monotonic()
        self._report(node, STEP_MOUNT, 0.0, "started")
        try:
            await asyncio.shield(self._local_mount)
        except BaseException:
            self._report(node, STEP_MOUNT, time.monotonic() - started, "failed")
            raise
        self._report(node, STEP_MOUNT, time.monotonic() - started, "done")

    async def _mount_on(self, node: Node, mounts: VolumePlan) -> None:
        self._started = True
        stdin = mounts.credentials.stdin() if mounts.credentials else None
        await self._step(
            node,
            Step(STEP_MOUNT, mount_script(mounts, node.index), mount_hint(mounts)),
            stdin,
        )

    async def release(self) -> None:
        """Unmount what this pool mounted on Local; safe to call twice.

        Cloud nodes are destroyed with their mounts (and a kept node
        remounts at the next pool's bootstrap).
        """
        mounts = self.plan.volumes
        if self._local_mount is not None and not self._local_mount.done():
            self._local_mount.cancel()
            await asyncio.wait([self._local_mount])
        if mounts is None or not mounts.local or not self._started:
            return
        self._started = False
        stuck = await asyncio.to_thread(release_local, mounts)
        if stuck:
            log.warning(
                "Pool %s left %s mounted: unmount with `fusermount -u PATH`",
                self.pool,
                ", ".join(stuck),
            )

    async def _local_environment(self, node: Node) -> str:
        # Every Local node shares this machine's cache: one builds, the others
        # (and other pools, other processes) wait and then find it ready.
        env_dir = self.plan.env_dir
        lock = _local_locks.setdefault(env_dir, asyncio.Lock())
        async with lock:
            lock_file = Path(env_dir + ".lock")
            holder = _file_lock(lock_file)
            await asyncio.to_thread(holder.__enter__)
            try:
                return await self._environment(node)
            finally:
                holder.__exit__(None, None, None)

    async def _environment(self, node: Node) -> str:
        plan = self.plan
        probe = await self._run(node, probe_script(plan))
        values = dict(
            line.split("=", 1) for line in probe[1].splitlines() if "=" in line
        )
        env_dir = values.get("SKYWARD_ENV", "")
        path = values.get("SKYWARD_PATH", "")
        if values.get("SKYWARD_READY") == "1":
            log.info("Node %d reuses environment %s", node.index, env_dir)
            self._report(node, "reuse environment", 0.0, "started")
            self._report(node, "reuse environment", 0.0, "done")
        else:
            if plan.installer == "uv":
                await self._step(
                    node,
                    Step(
                        "uv",
                        uv_script(plan),
                        "uv could not be installed: give the node internet access "
                        "or an image with uv (https://docs.astral.sh/uv/).",
                    ),
                )
            if plan.image.apt and not plan.local:
                await self._step(
                    node,
                    Step(
                        "apt",
                        apt_script(plan.image.apt),
                        "Check the names in Image(apt=[...]): "
                        f"{', '.join(map(repr, plan.image.apt))}.",
                    ),
                )
            await self._step(
                node,
                Step(
                    "python",
                    python_script(plan, env_dir),
                    f"Could not create a Python {client_python()} environment.",
                ),
            )
            await self._step(
                node,
                Step(
                    "pip",
                    pip_script(plan, env_dir),
                    "Check each requirement in Image(pip=[...]): "
                    f"{', '.join(map(repr, plan.image.pip)) or '(none)'}; each must "
                    "be something pip can install, such as 'numpy>=1.26'.",
                ),
            )
        node.python = f"{env_dir}/bin/python"
        node.env["VIRTUAL_ENV"] = env_dir
        if path:
            node.env["PATH"] = f"{env_dir}/bin:{path}"
        return env_dir

    async def _gpus(self, node: Node, accel: AcceleratorSpec) -> None:
        output = await self._step(
            node,
            Step(
                "gpu",
                f"set -e\n{GPU_QUERY}",
                "nvidia-smi did not answer: the node has no NVIDIA driver.",
            ),
        )
        gpus = parse_gpu_query(output)
        matching = [g for g in gpus if g.model == accel.name]
        if len(matching) < accel.count:
            found = ", ".join(f"{g.name} ({g.memory_gb:g} GB)" for g in gpus) or "none"
            raise BootstrapError(
                node.index,
                "gpu",
                output,
                None,
                hint=f"The pool asks for {accel.count} x {accel.name}; the node "
                f"has: {found}.",
            )
        node.devices = [g.uuid for g in matching]

    async def _mig(self, node: Node, accel: AcceleratorSpec) -> None:
        output = await self._step(
            node,
            Step(
                "mig",
                mig_script(accel),
                "Enabling MIG needs root or passwordless sudo, and a GPU and "
                "driver that support MIG.",
            ),
        )
        try:
            slots = assign_mig_slots(parse_mig_listing(output), accel)
        except ValueError as exc:
            raise BootstrapError(
                node.index, "mig", output, None, hint=str(exc)
            ) from None
        profiles = {p.name: p for p in accel.mig_profiles()}
        node.devices = [d.uuid for d in slots]
        for slot, device in enumerate(slots):
            node.slot_env[slot] = {"CUDA_VISIBLE_DEVICES": device.uuid}
            profile = profiles.get(device.profile.lower())
            node.slot_info[slot] = {
                "devices": [device.uuid],
                "accelerator_count": 1,
                "accelerator_memory_gb": profile.memory_gb if profile else 0.0,
            }

    # -- steps --------------------------------------------------------------

    def _report(
        self,
        node: Node,
        step: str,
        elapsed: float,
        status: Literal["started", "done", "failed"],
    ) -> None:
        self.emit(
            events.BootstrapProgress(
                pool=self.pool,
                node=node.index,
                step=step,
                elapsed=elapsed,
                status=status,
            )
        )

    async def _run(
        self, node: Node, script: str, stdin: bytes | None = None
    ) -> tuple[int | None, str]:
        """Run a script with ``sh`` on the node; its exit status and output.

        ``stdin`` is what the script reads (secrets go this way, never in
        the script); without it the script reads nothing.
        """
        conn = node.connections[0]
        redirect = "" if stdin is not None else " </dev/null"
        result = await conn.run(
            f"sh -c {shlex.quote(script)}{redirect}",
            input=stdin.decode() if stdin is not None else None,
            check=False,
            stderr=asyncssh.STDOUT,
            encoding="utf-8",
            errors="replace",
        )
        output = result.stdout if isinstance(result.stdout, str) else ""
        return result.exit_status, output

    async def _step(self, node: Node, step: Step, stdin: bytes | None = None) -> str:
        """Run one reported step; raise BootstrapError with its output if it fails."""
        started = time.monotonic()
        self._report(node, step.name, 0.0, "started")
        log.info("Node %d: bootstrap step %s", node.index, step.name)
        status, output = await self._run(node, step.script, stdin)
        elapsed = time.monotonic() - started
        if status != 0:
            self._report(node, step.name, elapsed, "failed")
            raise BootstrapError(node.index, step.name, output, status, hint=step.hint)
        self._report(node, step.name, elapsed, "done")
        log.debug("Node %d: step %s done in %.2f s", node.index, step.name, elapsed)
        return output
