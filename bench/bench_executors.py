"""Executor.map and a scikit-learn grid search on a pool, against the stdlib and loky.

Every comparison uses the same number of workers: a Local pool of 2 nodes x
2 slots against ``ProcessPoolExecutor(4)`` and joblib's loky with
``n_jobs=4``. Pools and process pools are warmed up before timing, so the
numbers are steady-state throughput, not start-up.

Run alone with ``PYTHONPATH=. python3 bench/bench_executors.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import skyward as sky

NODES = 2
CONCURRENCY = 2
WORKERS = NODES * CONCURRENCY
TASKS = 10_000
CHUNKSIZE = 100

Row = tuple[str, float, str, str, float, str]


def identity(x: int) -> int:
    return x


def _rate(run_map: Callable[..., Iterable[int]], chunksize: int) -> float:
    """Tasks per second of ``TASKS`` trivial calls through ``run_map``."""
    start = time.perf_counter()
    results = list(run_map(identity, range(TASKS), chunksize=chunksize))
    elapsed = time.perf_counter() - start
    assert results == list(range(TASKS))
    return TASKS / elapsed


def _best(samples: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(samples))


def bench_map() -> list[Row]:
    rows: list[Row] = []
    with ProcessPoolExecutor(WORKERS) as ppe:
        list(ppe.map(identity, range(WORKERS * 10)))
        ppe_rates = {c: _best(3, partial(_rate, ppe.map, c)) for c in (1, CHUNKSIZE)}
    with sky.Executor(
        provider=sky.Local(), nodes=NODES, concurrency=CONCURRENCY, console=False
    ) as ex:
        list(ex.map(identity, range(2000)))
        sky_rates = {c: _best(3, partial(_rate, ex.map, c)) for c in (1, CHUNKSIZE)}
    for chunksize in (1, CHUNKSIZE):
        ours, theirs = sky_rates[chunksize], ppe_rates[chunksize]
        rows.append(
            (
                f"Executor.map {TASKS:,} trivial tasks, chunksize={chunksize} "
                f"({NODES}x{CONCURRENCY} Local)",
                ours,
                "tasks/s",
                f"ProcessPoolExecutor({WORKERS}).map",
                theirs,
                f"{ours / theirs:.2f}x the throughput",
            )
        )
    return rows


def _grid_search(n_jobs: int) -> float:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    grid = {"C": [0.1, 1, 10], "kernel": ["rbf", "poly"], "gamma": ["scale", 0.001]}
    start = time.perf_counter()
    GridSearchCV(SVC(), grid, cv=5, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start


def _warm_up(n_jobs: int) -> None:
    from joblib import Parallel, delayed
    from sklearn.svm import SVC

    Parallel(n_jobs=n_jobs)(delayed(SVC)() for _ in range(WORKERS * 2))


def bench_grid_search() -> list[Row]:
    from joblib import parallel_config

    with parallel_config(backend="loky"):
        _warm_up(WORKERS)
        loky = min(_grid_search(WORKERS) for _ in range(2))
    with sky.integrations.ScikitLearnPool(
        provider=sky.Local(), nodes=NODES, concurrency=CONCURRENCY, console=False
    ):
        _warm_up(-1)
        ours = min(_grid_search(-1) for _ in range(2))
    return [
        (
            f"GridSearchCV digits, SVC 12 candidates x 5 folds, ScikitLearnPool "
            f"({NODES}x{CONCURRENCY} Local)",
            ours,
            "s",
            f"joblib loky n_jobs={WORKERS}",
            loky,
            f"{ours / loky:.2f}x loky's time",
        )
    ]


def run() -> list[Row]:
    return bench_map() + bench_grid_search()


if __name__ == "__main__":
    for name, value, unit, base_name, base_value, ratio in run():
        print(f"{name}: {value:,.2f} {unit} | {base_name}: {base_value:,.2f} | {ratio}")
