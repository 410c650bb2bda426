"""A node's resource sampler: ``python -m skyward.runtime.metrics --interval S``.

Runs beside the workers on its own SSH channel, so sampling never sits on a
task's path. Every ``interval`` seconds it writes one JSON line to stdout::

    {"time": 1767225600.5, "cpu": 12.5, "memory": 41.0,
     "gpus": [{"util": 87.0, "mem": 49.7}]}

CPU is the busy share of all cores since the previous sample, memory the
share not available to new processes, both from ``/proc`` on Linux and from
psutil elsewhere when it is importable. GPUs come from ``nvidia-smi`` when it
is on PATH. The sampler exits when its stdin closes (the client went away)
or its stdout breaks.

Shipped to nodes, so only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import time
from typing import Any

NVIDIA_QUERY = [
    "--query-gpu=utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
]


def parse_nvidia_smi(text: str) -> list[dict[str, float | None]]:
    """One ``{"util", "mem"}`` per GPU from ``nvidia-smi`` CSV output.

    ``mem`` is the used share of the GPU's memory in percent. Fields a GPU
    does not report (``[N/A]``, ``[Not Supported]``) become ``None``.
    """
    gpus: list[dict[str, float | None]] = []
    for row in text.splitlines():
        if not row.strip():
            continue
        fields = [_number(part) for part in row.split(",")]
        if len(fields) != 3:
            continue
        util, used, total = fields
        mem = 100.0 * used / total if used is not None and total else None
        gpus.append({"util": util, "mem": mem})
    return gpus


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_proc_stat(text: str) -> tuple[int, int]:
    """``(busy, total)`` jiffies of all CPUs from ``/proc/stat``."""
    for row in text.splitlines():
        if row.startswith("cpu "):
            values = [int(v) for v in row.split()[1:]]
            # user nice system idle iowait irq softirq steal (guest is in user)
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            total = sum(values[:8])
            return total - idle, total
    raise ValueError("/proc/stat has no aggregate 'cpu' line")


def cpu_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy = after[0] - before[0]
    total = after[1] - before[1]
    return 100.0 * busy / total if total > 0 else 0.0


def parse_meminfo(text: str) -> float:
    """Percent of memory not available to new processes, from ``/proc/meminfo``."""
    fields: dict[str, int] = {}
    for row in text.splitlines():
        name, _, rest = row.partition(":")
        parts = rest.split()
        if parts:
            fields[name] = int(parts[0])
    total = fields["MemTotal"]
    available = fields.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = fields.get("MemFree", 0) + fields.get("Cached", 0)
    return 100.0 * (total - available) / total if total else 0.0


class Sampler:
    """Reads CPU, memory and GPU use; each ``sample`` covers the time since the last."""

    def __init__(self) -> None:
        self._proc = os.path.exists("/proc/stat") and os.path.exists("/proc/meminfo")
        self._psutil: Any = None
        if not self._proc:
            try:
                import psutil

                self._psutil = psutil
                psutil.cpu_percent(None)
            except ImportError:
                raise RuntimeError(
                    "cannot read CPU and memory use on this node: there is no /proc "
                    "and psutil is not installed"
                ) from None
        self._nvidia = shutil.which("nvidia-smi")
        self._cpu = self._read_cpu() if self._proc else (0, 0)

    def _read_cpu(self) -> tuple[int, int]:
        with open("/proc/stat") as f:
            return parse_proc_stat(f.read())

    def sample(self, gpu_timeout: float) -> dict[str, Any]:
        if self._proc:
            now = self._read_cpu()
            cpu = cpu_percent(self._cpu, now)
            self._cpu = now
            with open("/proc/meminfo") as f:
                memory = parse_meminfo(f.read())
        else:
            cpu = float(self._psutil.cpu_percent(None))
            memory = float(self._psutil.virtual_memory().percent)
        return {
            "time": time.time(),
            "cpu": cpu,
            "memory": memory,
            "gpus": self._gpus(gpu_timeout),
        }

    def _gpus(self, timeout: float) -> list[dict[str, float | None]]:
        if self._nvidia is None:
            return []
        try:
            out = subprocess.run(
                [self._nvidia, *NVIDIA_QUERY],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def _wait_until(deadline: float) -> bool:
    """Wait until ``deadline``; True as soon as the client closes our stdin."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            readable, _, _ = select.select([sys.stdin], [], [], left)
        except (OSError, ValueError):  # no selectable stdin: just sleep
            time.sleep(left)
            return False
        if readable and not os.read(sys.stdin.fileno(), 4096):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report this node's resource use.")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=0, help="stop after N (0: never)")
    args = parser.parse_args(argv)
    try:
        sampler = Sampler()
    except RuntimeError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sent = 0
    deadline = time.monotonic() + args.interval
    while args.count == 0 or sent < args.count:
        if _wait_until(deadline):
            return 0
        # A slow sample (nvidia-smi can take a while) delays the next one
        # rather than making the sampler catch up with a burst.
        deadline = max(deadline + args.interval, time.monotonic())
        line = json.dumps(sampler.sample(gpu_timeout=max(1.0, args.interval)))
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            return 0
        sent += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
