"""Helpers shared by the environment tests."""

from __future__ import annotations

import socket
import time

import psutil

NODE_MODULE = "skyward/infra/providers/local_node.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def node_processes() -> list[psutil.Process]:
    """Local node servers this test process started and that still run."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if NODE_MODULE in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found
