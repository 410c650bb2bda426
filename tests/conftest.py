"""Fixtures shared by the whole suite: Local pools and leak checks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import skyward as sky


def pool_processes(pool: sky.ComputePool) -> list[psutil.Process]:
    """The node processes of an open Local pool and every process under them."""
    found: list[psutil.Process] = []
    provisioner = pool._provisioner
    for pid in getattr(provisioner, "pids", []):
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        found.append(proc)
        found.extend(proc.children(recursive=True))
    return found


def pool_ports(pool: sky.ComputePool) -> list[int]:
    assert pool.provisioned is not None
    return [ep.port for ep in pool.provisioned.endpoints]


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_gone(
    procs: list[psutil.Process], timeout: float = 10.0
) -> list[psutil.Process]:
    """Wait for processes to exit; return the ones still running."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        if alive:
            time.sleep(0.1)
    return alive


class LeakCheck:
    """Snapshot a pool's processes and ports while open; assert them gone after."""

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []
        self.ports: list[int] = []

    def record(self, pool: sky.ComputePool) -> None:
        self.procs = pool_processes(pool)
        self.ports = pool_ports(pool)
        # 2 nodes x concurrency workers + node servers at the least
        assert len(self.procs) >= pool.nodes * (1 + pool.concurrency)

    def assert_clean(self, timeout: float = 10.0) -> None:
        assert self.procs, "record() was not called while the pool was open"
        alive = wait_gone(self.procs, timeout)
        assert alive == [], f"processes left running: {alive}"
        assert [p for p in self.ports if port_is_open(p)] == []


@pytest.fixture
def leak_check() -> LeakCheck:
    return LeakCheck()


@pytest.fixture(scope="module")
def pool2() -> Iterator[sky.ComputePool]:
    """A warm 2-node x 2-slot Local pool shared by a test module."""
    with sky.ComputePool(provider=sky.Local(), nodes=2, concurrency=2) as pool:
        yield pool


ROOT = Path(__file__).resolve().parent.parent


def run_example(
    name: str, env: dict[str, str] | None = None, timeout: float = 240
) -> str:
    """Run ``examples/<name>`` on Local as a user would; return its stdout.

    ``env`` is the whole environment when given (the caller starts from
    ``os.environ``); ``PYTHONPATH`` and ``SKYWARD_PROVIDER`` are always set.
    """
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={
            **(os.environ if env is None else env),
            "PYTHONPATH": str(ROOT),
            "SKYWARD_PROVIDER": "local",
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@contextlib.contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1, with boto3 pointed at it and test keys."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for variable in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield url
    finally:
        server.stop()
