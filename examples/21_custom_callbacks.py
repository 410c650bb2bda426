"""Event monitoring with custom callbacks: compose, use_callback, on_event.

Runs on this machine by default; ``SKYWARD_PROVIDER=aws`` runs it on AWS.
"""

import skyward as sky
from skyward.callback import compose, use_callback
from skyward.events import (
    CostFinal,
    CostUpdate,
    FunctionResult,
    InstanceProvisioned,
    Metrics,
    PoolReady,
    ProvisioningStarted,
    SkywardEvent,
)


def logging_callback(event: SkywardEvent) -> None:
    match event:
        case ProvisioningStarted():
            print("[LOG] Provisioning started...")
        case InstanceProvisioned(instance=inst):
            print(f"[LOG] Instance {inst.instance_id} at {inst.ip}")
        case PoolReady():
            print("[LOG] Pool ready!")
        case FunctionResult(function_name=name, duration_ms=ms):
            print(f"[LOG] {name} completed in {ms:.1f}ms")


def cost_tracker(event: SkywardEvent) -> None:
    match event:
        case CostUpdate(total_cost=cost, hourly_rate=rate):
            print(f"[COST] Running: ${cost:.3f} (${rate:.2f}/hr)")
        case CostFinal(total_cost=cost, duration_seconds=secs):
            print(f"[COST] Final: ${cost:.3f} ({secs / 60:.1f} min)")


def metrics_monitor(event: SkywardEvent) -> None:
    match event:
        case Metrics(gpu_utilization=gpu) if gpu and gpu > 80:
            print(f"[METRICS] GPU high: {gpu}%")


@sky.compute
def train_step(batch_id: int) -> dict:
    import time

    time.sleep(0.1)
    return {"batch": batch_id, "loss": 1.0 / (batch_id + 1)}


# Compose multiple callbacks
combined = compose(logging_callback, cost_tracker, metrics_monitor)

# Option 1: use_callback context manager
with use_callback(combined):
    with sky.ComputePool(
        provider=sky.provider_from_env(),
        accelerator="T4",
    ) as pool:
        for i in range(5):
            result = train_step(i) >> pool

# Option 2: on_event parameter
with sky.ComputePool(
    provider=sky.provider_from_env(),
    accelerator="T4",
    on_event=logging_callback,
) as pool:
    result = train_step(0) >> pool
