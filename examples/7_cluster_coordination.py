"""Map-reduce across nodes, with the head node acting as coordinator."""

import skyward as sky


@sky.compute
def worker_task(data: list[int]) -> dict:
    info = sky.instance_info()

    local_data = sky.shard(data)
    result = sum(local_data)

    if info.is_head:
        print("I am the coordinator")

    return {
        "node": info.node,
        "total_nodes": info.total_nodes,
        "is_head": info.is_head,
        "result": result,
    }


@sky.pool(provider=sky.provider_from_env(), nodes=4)
def main():
    results = worker_task(list(range(100))) @ sky

    for r in results:
        role = "head" if r["is_head"] else "worker"
        print(f"node {r['node']}/{r['total_nodes']} ({role}): {r['result']}")

    # Head node aggregates
    total = sum(r["result"] for r in results)
    print(f"Total: {total}")  # 4950


if __name__ == "__main__":
    main()
