"""Run every benchmark module and print one table of results with baselines.

    python3 bench/run.py            # all bench_*.py modules
    python3 bench/run.py core       # only bench_core.py

Each module's ``run()`` returns rows ``(name, value, unit, baseline_name,
baseline_value, ratio_text)``, measured in this run on this machine.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main(argv: list[str]) -> int:
    wanted = set(argv)
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if wanted:
        modules = [m for m in modules if m.removeprefix("bench_") in wanted]
    table = Table(title="Skyward benchmarks (this machine, this run)")
    for column in ("measure", "Skyward", "baseline", "baseline value", "ratio"):
        table.add_column(column)
    started = time.perf_counter()
    for name in modules:
        module = importlib.import_module(name)
        for row, value, unit, base_name, base_value, ratio in module.run():
            table.add_row(
                row,
                f"{value:,.3f} {unit}",
                base_name,
                f"{base_value:,.3f} {unit}" if base_value else "-",
                ratio,
            )
    Console(width=150).print(table)
    print(f"benchmarks took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
