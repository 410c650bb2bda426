"""A drop-in for concurrent.futures.ThreadPoolExecutor, running on a pool.

The guide's version sleeps 5 s per task on 5 nodes x 5 slots; the sizes
here are small enough to run on a laptop, and SKYWARD_SLEEP scales them.
"""

import os
from concurrent.futures import as_completed

import skyward as sky

SLEEP = float(os.environ.get("SKYWARD_SLEEP", "0.5"))


def slow_task(x: int) -> int:
    from time import sleep

    print(f"Task {x} starting")
    sleep(SLEEP)
    return x * 2


# Executor works exactly like ThreadPoolExecutor
with sky.Executor(
    provider=sky.provider_from_env(),
    nodes=2,
    concurrency=2,  # 4 total slots
) as executor:
    # submit() individual tasks
    futures = [executor.submit(slow_task, i) for i in range(4)]

    # as_completed() for results as they finish
    for future in as_completed(futures):
        print(f"Result: {future.result()}")

    # map() for ordered results
    results = list(executor.map(slow_task, range(4, 8)))
    print(f"Mapped: {results}")
