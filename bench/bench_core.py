"""The core targets of DESIGN.md, each beside a baseline from this same run.

- round trip of a trivial ``f() >> pool`` on a warm 2-node Local pool, p50 and
  p99, against ``ProcessPoolExecutor.submit().result()``;
- 10,000 trivial tasks through ``gather`` on 2 nodes x 2 slots, against
  ``ProcessPoolExecutor(4)``;
- a 256 MiB argument reaching a node, against OpenSSH's
  ``ssh host 'cat > /dev/null'`` on 127.0.0.1;
- a 4-node Local pool from ``__enter__`` to ready, against the 2 s target.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor

from sshd import OpenSSHServer

import skyward as sky

Row = tuple[str, float, str, str, float, str]
ROUND_TRIPS = 2000
TASKS = 10_000
BULK = 256 * 1024 * 1024


def noop() -> None:
    return None


def ident(x: int) -> int:
    return x


def size(blob: bytes) -> int:
    return len(blob)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def timed_calls(call, n: int) -> list[float]:
    for _ in range(50):
        call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def run() -> list[Row]:
    rows: list[Row] = []
    with ProcessPoolExecutor(4) as ppe:
        base_rt = timed_calls(lambda: ppe.submit(noop).result(), ROUND_TRIPS)
        t0 = time.perf_counter()
        list(ppe.map(ident, range(TASKS)))
        base_tput = TASKS / (time.perf_counter() - t0)

    f = sky.compute(noop)
    g = sky.compute(ident)
    with sky.ComputePool(
        provider=sky.Local(), nodes=2, concurrency=2, console=False
    ) as pool:
        rt = timed_calls(lambda: f() >> pool, ROUND_TRIPS)
        sky.gather(*(g(i) for i in range(1000))) >> pool
        t0 = time.perf_counter()
        results = sky.gather(*(g(i) for i in range(TASKS))) >> pool
        tput = TASKS / (time.perf_counter() - t0)
        assert results == tuple(range(TASKS))

        blob = bytes(BULK)
        h = sky.compute(size)
        h(b"warm") >> pool
        bulk_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert h(blob) >> pool == BULK
            bulk_times.append(time.perf_counter() - t0)
    bulk = statistics.median(bulk_times)

    p50, p99 = percentile(rt, 0.5) * 1e3, percentile(rt, 0.99) * 1e3
    b50, b99 = percentile(base_rt, 0.5) * 1e3, percentile(base_rt, 0.99) * 1e3
    rows.append(
        (
            "round trip p50, f() >> pool",
            p50,
            "ms",
            "ProcessPoolExecutor p50",
            b50,
            f"{p50 / b50:.2f}x (target < 3x, < 1 ms)",
        )
    )
    rows.append(
        (
            "round trip p99, f() >> pool",
            p99,
            "ms",
            "ProcessPoolExecutor p99",
            b99,
            f"{p99 / b99:.2f}x",
        )
    )
    rows.append(
        (
            "10,000 tasks via gather, 2x2 slots",
            tput,
            "tasks/s",
            "ProcessPoolExecutor(4).map",
            base_tput,
            f"{tput / base_tput:.2f}x of baseline (target > 5,000/s)",
        )
    )

    mb = BULK / 2**20
    if OpenSSHServer.available():
        server = OpenSSHServer().start()
        try:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(server.ssh("cat > /dev/null"), input=blob, check=True)
                times.append(time.perf_counter() - t0)
            base_bulk = statistics.median(times)
        finally:
            server.stop()
        rows.append(
            (
                "256 MiB argument to a node",
                mb / bulk,
                "MiB/s",
                "OpenSSH ssh 'cat > /dev/null'",
                mb / base_bulk,
                f"{base_bulk / bulk:.2f} of OpenSSH's speed (target >= 0.25)",
            )
        )
    else:
        rows.append(
            (
                "256 MiB argument to a node",
                mb / bulk,
                "MiB/s",
                "OpenSSH (sshd not available as root)",
                0.0,
                "-",
            )
        )

    ready = []
    for _ in range(3):
        t0 = time.perf_counter()
        with sky.ComputePool(provider=sky.Local(), nodes=4, console=False):
            ready.append(time.perf_counter() - t0)
    r = statistics.median(ready)
    rows.append(
        (
            "4-node Local pool, __enter__ to ready",
            r,
            "s",
            "target",
            2.0,
            f"{r / 2.0:.2f} of the target",
        )
    )
    return rows
