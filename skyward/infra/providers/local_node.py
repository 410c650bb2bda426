"""A Local node: an SSH server on 127.0.0.1 that runs commands in its own folder.

Started by :class:`~skyward.infra.providers.local.LocalProvisioner` as
``python .../local_node.py`` (as a script). It prints one line,
``SKYWARD-NODE-READY <port>``, once it listens, and then serves exec
requests from clients holding the pool's key, each as a shell command in the
node's working directory, much as sshd would.

It imports nothing of Skyward, so it starts as fast as Python and asyncssh
allow and runs under any interpreter that has asyncssh.

It stops itself, and every process it started, when it is told to
(SIGTERM), when the process that started it dies, or when no client has
been connected for its idle timeout: the dead man's switch that keeps a
crashed client from leaving nodes behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable

import asyncssh

log = logging.getLogger("skyward.node")

READY = "SKYWARD-NODE-READY"


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # the worker's stdin watch still applies
            pass


async def terminate(procs: Iterable[asyncio.subprocess.Process], grace: float) -> None:
    """SIGTERM every process, wait up to ``grace`` seconds, SIGKILL the rest."""
    procs = [p for p in procs if p.returncode is None]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


MOUNTS_FILE = ".skyward-mounts"  # written by the volume step of the bootstrap


async def unmount_listed(workdir: str) -> None:
    """Lazily unmount every volume the bootstrap mounted from this node.

    A normal close unmounts them from the client first; this covers a client
    that died without that chance. s3fs exits once its mount is gone.
    """
    try:
        with open(os.path.join(workdir, MOUNTS_FILE)) as listing:
            paths = [line.rstrip("\n") for line in listing if line.strip()]
    except FileNotFoundError:
        return
    for path in paths:
        for command in (["fusermount", "-u", "-z", path], ["umount", "-l", path]):
            try:
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            except FileNotFoundError:
                continue
            if await proc.wait() == 0:
                log.info("unmounted %s", path)
                break


class NodeServer:
    def __init__(self, workdir: str, idle_timeout: float, parent_pid: int):
        self.workdir = workdir
        self.idle_timeout = idle_timeout
        self.parent_pid = parent_pid
        self.connections = 0
        self.idle_since = time.monotonic()
        self.children: set[asyncio.subprocess.Process] = set()
        self.stopping = asyncio.Event()
        env = dict(os.environ)
        # The node server needs Skyward importable; the commands it runs must
        # not inherit that, or a node would see the client's package.
        env.pop("PYTHONPATH", None)
        env["SKYWARD_NODE_DIR"] = workdir
        self.env = env

    def server_factory(self) -> asyncssh.SSHServer:
        node = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                node.connections += 1

            def connection_lost(self, exc: Exception | None) -> None:
                node.connections -= 1
                if node.connections == 0:
                    node.idle_since = time.monotonic()

        return _Server()

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command
        if not command:
            process.stderr.write(b"This node runs commands only; no shell.\n")
            process.exit(1)
            return
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.workdir,
            env=self.env,
            preexec_fn=_die_with_parent,
        )
        self.children.add(proc)
        assert proc.stdin and proc.stdout and proc.stderr
        feeding = asyncio.ensure_future(_feed(process.stdin, proc.stdin))
        try:
            await asyncio.gather(
                _drain(proc.stdout, process.stdout), _drain(proc.stderr, process.stderr)
            )
            status = await proc.wait()
        finally:
            feeding.cancel()
            self.children.discard(proc)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(Exception):
            process.exit(status)

    async def watch(self) -> None:
        while not self.stopping.is_set():
            if os.getppid() != self.parent_pid:
                log.warning("client process is gone; stopping")
                break
            idle = time.monotonic() - self.idle_since
            if self.connections == 0 and idle > self.idle_timeout:
                log.warning("no client for %.0f s; stopping", idle)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.25)
        self.stopping.set()

    async def stop_children(self) -> None:
        await terminate(list(self.children), grace=2)


async def _feed(
    reader: asyncssh.SSHReader[bytes], writer: asyncio.StreamWriter
) -> None:
    """Client's stdin -> command's stdin, closing it at end of input."""
    try:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (asyncssh.Error, ConnectionError, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _drain(
    reader: asyncio.StreamReader, writer: asyncssh.SSHWriter[bytes]
) -> None:
    """Command's output -> client, until the command closes it."""
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        try:
            writer.write(chunk)
            await writer.drain()
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            # The client went away; keep reading so the command is not blocked.
            continue


async def serve(args: argparse.Namespace) -> None:
    node = NodeServer(args.workdir, args.idle_timeout, args.parent_pid)
    host_key = asyncssh.read_private_key(args.host_key)
    authorized = asyncssh.read_authorized_keys(args.authorized_keys)
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized,
        server_factory=node.server_factory,
        process_factory=node.handle,
        encoding=None,
        allow_scp=False,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=5,
        keepalive_count_max=3,
        window=8 * 1024 * 1024,
        max_pktsize=256 * 1024,
    )
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, node.stopping.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    sys.stdout.write(f"{READY} {port}\n")
    sys.stdout.flush()
    await node.watch()
    server.close()
    await node.stop_children()
    await unmount_listed(args.workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--authorized-keys", required=True)
    parser.add_argument("--idle-timeout", type=float, default=300.0)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s node %(process)d %(message)s"
    )
    os.makedirs(args.workdir, exist_ok=True)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
