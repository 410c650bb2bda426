"""What watching a pool costs on the task path.

    PYTHONPATH=. python3 bench/events_overhead.py

Round trip of a trivial ``f() >> pool`` on a warm 1-node Local pool, and
throughput of 4,000 trivial tasks through ``gather`` on 2 nodes x 2 slots,
without listeners (``console=False``), with a callback (per-task events on)
and with a callback plus node metrics sampled every 0.5 s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import skyward as sky


@sky.compute
def noop() -> None:
    return None


def measure(**options: Any) -> tuple[float, float]:
    with sky.ComputePool(console=False, **options) as pool:
        for _ in range(200):
            noop() >> pool
        times = []
        for _ in range(2000):
            started = time.perf_counter()
            noop() >> pool
            times.append(time.perf_counter() - started)
    with sky.ComputePool(nodes=2, concurrency=2, console=False, **options) as pool:
        sky.gather(*(noop() for _ in range(500))) >> pool
        started = time.perf_counter()
        sky.gather(*(noop() for _ in range(4000))) >> pool
        rate = 4000 / (time.perf_counter() - started)
    return statistics.median(times) * 1000, rate


def main() -> None:
    seen: list[object] = []
    cases = {
        "no listeners": {"metrics_interval": None},
        "callback": {"on_event": seen.append, "metrics_interval": None},
        "callback + metrics 0.5 s": {"on_event": seen.append, "metrics_interval": 0.5},
    }
    base = None
    for name, options in cases.items():
        p50, rate = measure(**options)
        base = base or (p50, rate)
        print(
            f"{name:<26} p50 {p50:.3f} ms ({p50 / base[0]:.2f}x)   "
            f"{rate:,.0f} tasks/s ({rate / base[1]:.2f}x)"
        )


if __name__ == "__main__":
    main()
