"""Monitor execution with events: metrics, task output, bootstrap and cost.

Runs on this machine by default; ``SKYWARD_PROVIDER=aws`` runs it on AWS.
"""

import skyward as sky


def my_callback(event):
    match event:
        case sky.Metrics(cpu_percent=cpu, gpu_utilization=gpu):
            print(f"CPU: {cpu:.1f}%, GPU: {gpu}%")
        case sky.LogLine(line=line, node=node):
            print(f"[Node {node}] {line}")
        case sky.BootstrapProgress(step=step, status="started"):
            print(f"Installing: {step}")
        case sky.CostFinal(total_cost=cost):
            print(f"Total cost: ${cost:.2f}")


@sky.compute
def long_running_task():
    import time

    for i in range(10):
        print(f"Step {i}")
        time.sleep(0.3)
    return "done"


with sky.ComputePool(
    provider=sky.provider_from_env(),
    accelerator="T4",
    on_event=my_callback,
) as pool:
    result = long_running_task() >> pool
