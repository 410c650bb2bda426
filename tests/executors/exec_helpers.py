"""Tasks and helpers the executor tests share (imported by the tests)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

import skyward as sky
from tests.conftest import pool_processes

WORKER_MODULE = "skyward.runtime.worker"


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


class Leaks:
    """Snapshot a pool's node and worker processes; assert them gone later."""

    def __init__(self) -> None:
        self.procs: list[psutil.Process] = []

    def record(self, pool: sky.ComputePool) -> None:
        procs = pool_processes(pool)
        # By pid: a node's child between fork and exec has the node's cmdline.
        node_pids = set(pool._provisioner.pids)
        nodes = [p for p in procs if p.pid in node_pids]
        workers = [p for p in procs if WORKER_MODULE in cmdline(p)]
        seen = [cmdline(p) for p in procs]
        assert len(nodes) == pool.nodes, f"node processes of {pool.name}: {seen}"
        assert len(workers) == pool.total_slots, f"workers of {pool.name}: {seen}"
        self.procs.extend(nodes + workers)

    def assert_gone(self, timeout: float = 15.0) -> None:
        assert self.procs, "record() was not called while the pool was open"
        deadline = time.monotonic() + timeout
        alive = list(self.procs)
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _running(p)]
            if alive:
                time.sleep(0.1)
        assert alive == [], f"processes left running: {[cmdline(p) for p in alive]}"


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Gate:
    """A file tasks wait on, and marker files they leave, in a shared folder.

    Local nodes run on this machine, so a task can wait for the test to open
    the gate and can leave evidence that it ran; no timing is involved.
    """

    def __init__(self, root: Path):
        self.root = root
        self.path = str(root / "gate")

    def open(self) -> None:
        Path(self.path).touch()

    def markers(self, prefix: str) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.name.startswith(prefix)}

    def wait_markers(self, prefix: str, count: int, timeout: float = 30.0) -> set[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.markers(prefix)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"only {self.markers(prefix)} of {count} {prefix} markers")


def blocked(gate_path: str, marker_dir: str, name: str) -> int:
    """Leave a marker naming this task and its node, then wait for the gate."""
    node = sky.instance_info().node
    Path(marker_dir, f"{name}-node{node}").touch()
    while not os.path.exists(gate_path):
        time.sleep(0.01)
    return node


def mark(marker_dir: str, name: str) -> str:
    Path(marker_dir, name).touch()
    return name
