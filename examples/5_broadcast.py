"""Run a function once on every node; each node sums its own shard."""

import skyward as sky


@sky.compute
def process_partition(data: list[int]) -> dict:
    info = sky.instance_info()
    local_data = sky.shard(data)  # Auto-partition

    return {
        "node": info.node,
        "partition_size": len(local_data),
        "partition_sum": sum(local_data),
    }


@sky.pool(provider=sky.provider_from_env(), nodes=4, accelerator="T4")
def main():
    data = list(range(1000))
    results = process_partition(data) @ sky  # Broadcast!

    for r in results:
        print(f"node {r['node']}: {r['partition_size']} items")
    total = sum(r["partition_sum"] for r in results)
    print(f"Total: {total}")  # 499500


if __name__ == "__main__":
    main()
