"""The whole concurrent.futures API on a pool: submit, map, as_completed.

The guide's pool has 4 nodes x 4 slots; this one has 2 x 2 so it runs on a
laptop, and SKYWARD_SLEEP scales the half-second each item takes.
"""

import concurrent.futures
import os

import skyward as sky

SLEEP = float(os.environ.get("SKYWARD_SLEEP", "0.5"))


def process_item(item: int) -> dict:
    import time

    time.sleep(SLEEP)
    return {"item": item, "result": item**2}


with sky.Executor(
    provider=sky.provider_from_env(),
    nodes=2,
    concurrency=2,  # 4 parallel slots
    cpu=2,
    memory="4GB",
    allocation="spot-if-available",
) as executor:
    print(f"Ready with {executor.total_slots} slots")

    # submit() - individual tasks
    future = executor.submit(process_item, 42)
    result = future.result()
    print(f"Submitted: {result}")

    # map() - preserves order
    results = list(executor.map(process_item, range(5)))
    print(f"Mapped: {[r['result'] for r in results]}")

    # as_completed() - results as they finish
    futures = [executor.submit(process_item, x) for x in range(20)]
    for future in concurrent.futures.as_completed(futures):
        result = future.result()
        print(f"Completed: {result}")

    # Exception handling
    def might_fail(x: int) -> int:
        if x == 7:
            raise ValueError("Unlucky!")
        return x * 2

    futures = [executor.submit(might_fail, x) for x in range(10)]
    for i, future in enumerate(futures):
        try:
            print(f"Item {i}: {future.result()}")
        except ValueError as e:
            print(f"Item {i}: Error - {e}")
