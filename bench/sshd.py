"""A throwaway OpenSSH server on 127.0.0.1, for baselines measured against it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class OpenSSHServer:
    """Starts ``sshd -D`` on a free port with its own keys; stop() removes all."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="skyward-bench-sshd-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return (
            bool(shutil.which("sshd") or Path("/usr/sbin/sshd").exists())
            and bool(shutil.which("ssh"))
            and os.geteuid() == 0
        )

    def start(self) -> OpenSSHServer:
        d = self.dir
        for name in ("host", "client"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                check=True,
            )
        (d / "authorized_keys").write_bytes((d / "client.pub").read_bytes())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\n"
            "PasswordAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
        )
        os.makedirs("/run/sshd", exist_ok=True)
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def ssh(self, command: str) -> list[str]:
        return [
            "ssh",
            "-q",
            "-p",
            str(self.port),
            "-i",
            str(self.dir / "client"),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "root@127.0.0.1",
            command,
        ]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
