"""``sky.Local()``: nodes are SSH-speaking processes on this machine.

Each node is a :mod:`~skyward.infra.providers.local_node` process with its
own working directory, host key and free port on 127.0.0.1. The pool's
client key is generated per pool, and the client pins each node's host key,
exactly as it would for a cloud node.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import asyncssh
import psutil
from pydantic import Field

from skyward import events
from skyward.cluster import NodeEndpoint
from skyward.cluster.devices import local_gpus, local_has
from skyward.errors import ProvisioningError
from skyward.infra.base import Emit, PoolOptions, Provider, Provisioned
from skyward.infra.providers import local_node
from skyward.infra.providers.local_node import terminate
from skyward.spec import InstanceSpec, PoolSpec

log = logging.getLogger(__name__)

READY = "SKYWARD-NODE-READY"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Local(Provider):
    """Nodes as local processes; the default provider.

    ``python`` is the interpreter nodes run (default: this one). ``root`` is
    where node folders go (default: a fresh temporary folder per pool).
    """

    kind = "local"
    on_this_machine = True

    python: str | None = None
    root: str | None = Field(default=None, description="parent folder of node dirs")

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> LocalProvisioner:
        return LocalProvisioner(self, spec, pool_name, emit)

    def check(self, spec: PoolSpec) -> None:
        """Log what Local will not do for an accelerator; it still runs.

        Local nodes share this machine's GPUs as they are: an accelerator it
        lacks is left out (workers report none), and a MIG layout is not
        created. So a script written for a cloud runs here unchanged.
        """
        accel = spec.accelerator
        if accel is None:
            return
        if accel.mig:
            log.info(
                "Local leaves this machine's GPUs as they are: the MIG layout %s "
                "is not created; its %d slots per node share the GPUs",
                list(accel.mig),
                accel.slots_per_node,
            )
        if not local_has(accel):
            log.info(
                "This machine has no %d x %s; Local nodes run without it and "
                "report no accelerator",
                accel.count,
                accel.name,
            )

    def available_instances(self) -> list[InstanceSpec]:
        """This machine, as the one kind of instance Local offers (free)."""
        gpus = local_gpus()
        first = gpus[0] if gpus else None
        return [
            InstanceSpec(
                name=socket.gethostname() or "localhost",
                vcpus=os.cpu_count() or 1,
                memory_gb=round(psutil.virtual_memory().total / 1024**3, 1),
                accelerator=first.model if first else None,
                accelerator_count=len(gpus),
                accelerator_memory_gb=first.memory_gb if first else 0.0,
                price_on_demand=0.0,
                price_spot=None,
                region="local",
                provider=self.kind,
            )
        ]


class LocalProvisioner:
    def __init__(self, config: Local, spec: PoolSpec, pool_name: str, emit: Emit):
        self.config = config
        self.spec = spec
        self.pool_name = pool_name
        self.emit = emit
        self.processes: list[asyncio.subprocess.Process] = []
        self.root: Path | None = None

    async def provision(self) -> Provisioned:
        base = self.config.root
        if base:
            os.makedirs(base, exist_ok=True)
        self.root = Path(
            tempfile.mkdtemp(prefix=f"skyward-{self.pool_name}-", dir=base)
        )
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        authorized = self.root / "authorized_keys"
        authorized.write_bytes(client_key.export_public_key())
        private = client_key.export_private_key().decode()
        results = await asyncio.gather(
            *(self._start_node(i, authorized, private) for i in range(self.spec.nodes)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        endpoints = [r for r in results if isinstance(r, NodeEndpoint)]
        return Provisioned(
            endpoints=endpoints,
            head_port=free_port(),
            hourly_rate=0.0,
            instances=[
                events.InstanceInfo(
                    instance_id=ep.instance_id,
                    ip=ep.host,
                    node=ep.node,
                    private_ip=ep.private_ip,
                )
                for ep in endpoints
            ],
        )

    async def _start_node(
        self, index: int, authorized: Path, private_key: str
    ) -> NodeEndpoint:
        assert self.root is not None
        workdir = self.root / f"node-{index}"
        workdir.mkdir()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        key_file = self.root / f"node-{index}.host_key"
        key_file.write_bytes(host_key.export_private_key())
        key_file.chmod(0o600)
        python = self.config.python or sys.executable
        node_log = open(self.root / f"node-{index}.log", "ab")  # noqa: SIM115
        try:
            proc = await asyncio.create_subprocess_exec(
                python,
                # Run as a script: importing the skyward package would cost
                # every node a fifth of a second of start-up.
                local_node.__file__,
                "--workdir",
                str(workdir),
                "--host-key",
                str(key_file),
                "--authorized-keys",
                str(authorized),
                "--idle-timeout",
                str(self.spec.idle_timeout),
                "--parent-pid",
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=node_log,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProvisioningError(
                f"Could not start Local node {index} with the interpreter "
                f"{python!r}: {exc}. Pass Local(python=...) an existing Python "
                "that has asyncssh and cloudpickle installed."
            ) from exc
        finally:
            node_log.close()
        self.processes.append(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        text = line.decode().strip()
        if not text.startswith(READY):
            log_text = (self.root / f"node-{index}.log").read_text(errors="replace")
            raise ProvisioningError(
                f"Local node {index} did not start within {START_TIMEOUT:.0f} s. "
                f"Its log:\n{log_text[-2000:]}"
            )
        port = int(text.split()[1])
        endpoint = NodeEndpoint(
            node=index,
            host="127.0.0.1",
            port=port,
            user=os.environ.get("USER", "skyward"),
            host_key=host_key.export_public_key().decode(),
            client_key=private_key,
            private_ip="127.0.0.1",
            python=python,
            instance_id=f"local-{proc.pid}",
        )
        self.emit(
            events.InstanceProvisioned(
                pool=self.pool_name,
                instance=events.InstanceInfo(
                    instance_id=endpoint.instance_id,
                    ip="127.0.0.1",
                    node=index,
                    private_ip="127.0.0.1",
                ),
            )
        )
        log.debug(
            "Local node %d listening on 127.0.0.1:%d (pid %d)", index, port, proc.pid
        )
        return endpoint

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def teardown(self) -> None:
        await terminate(self.processes, grace=3)
        self.processes.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
