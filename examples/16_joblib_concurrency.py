"""Existing joblib code, run on a pool's slots.

The guide's version sleeps 5 s per task on 5 nodes x 5 slots; the sizes
here are small enough to run on a laptop, and SKYWARD_SLEEP scales them.
"""

import os
from time import sleep

from joblib import Parallel, delayed

import skyward as sky

SLEEP = float(os.environ.get("SKYWARD_SLEEP", "0.5"))


def slow_task(x):
    print(f"Task {x} starting")
    sleep(SLEEP)
    return x * 2


with sky.integrations.JoblibPool(
    provider=sky.provider_from_env(),
    nodes=2,
    concurrency=2,
    image=sky.Image(pip=["joblib"]),
):
    # Distribute 20 tasks across 4 slots
    results = Parallel(n_jobs=8)(delayed(slow_task)(i) for i in range(20))
    print(results)
