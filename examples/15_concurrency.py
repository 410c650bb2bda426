"""Many tasks across many slots: nodes x concurrency run at once.

The guide's version sleeps 10 s per task on 5 nodes x 10 slots; the sizes
here are small enough to run on a laptop, and SKYWARD_SLEEP scales them.
"""

import os
from time import sleep

import skyward as sky

SLEEP = float(os.environ.get("SKYWARD_SLEEP", "0.5"))


@sky.compute
def heavy_stuff(x: int, y: int) -> int:
    print(f"Processing {x} + {y}")
    sleep(SLEEP)
    return x + y


@sky.pool(
    provider=sky.provider_from_env(),
    cpu=1,
    concurrency=5,  # 5 concurrent tasks per node
    nodes=2,  # 2 nodes = 10 total slots
)
def main():
    # Process 20 tasks across 10 concurrent slots
    results = sky.conc.map_async(lambda x: heavy_stuff(x, x) >> sky, list(range(20)))
    print(list(results))


if __name__ == "__main__":
    main()
