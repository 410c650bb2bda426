"""The event types: immutable, keyword-only, pattern-matchable, exported."""

from __future__ import annotations

import dataclasses

import pytest

import skyward as sky
from skyward import events

ISSUE_EVENTS = [
    "ProvisioningStarted",
    "InstanceProvisioned",
    "BootstrapProgress",
    "PoolReady",
    "FunctionCall",
    "FunctionResult",
    "LogLine",
    "Metrics",
    "CostUpdate",
    "CostFinal",
    "PoolStopped",
]


@pytest.mark.parametrize("name", ISSUE_EVENTS)
def test_event_is_exported_at_top_level_and_derives_from_skyward_event(
    name: str,
) -> None:
    cls = getattr(sky, name)
    assert cls is getattr(events, name)
    assert issubclass(cls, sky.SkywardEvent)
    assert name in sky.__all__


def test_events_are_frozen_and_keyword_only() -> None:
    metrics = events.Metrics(pool="p", node=1, cpu_percent=12.5, memory_percent=40.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.cpu_percent = 99.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        events.Metrics("p", 0.0, 1, 12.5, 40.0)  # type: ignore[misc]
    assert metrics.gpu_utilization is None
    assert metrics.gpu_memory_percent is None


def describe(event: events.SkywardEvent) -> str:
    match event:
        case sky.Metrics(cpu_percent=cpu, gpu_utilization=None):
            return f"cpu {cpu:.1f}"
        case sky.Metrics(cpu_percent=cpu, gpu_utilization=gpu):
            return f"cpu {cpu:.1f} gpu {gpu:.0f}"
        case sky.LogLine(node=node, stream="stderr", line=line):
            return f"err {node} {line}"
        case sky.InstanceProvisioned(instance=sky.events.InstanceInfo(spot=True)):
            return f"spot {event.node}"
        case sky.FunctionResult(function_name=name, ok=False, error=error):
            return f"{name} failed: {error}"
        case sky.CostFinal(total_cost=cost, duration_seconds=secs):
            return f"${cost:.2f} in {secs:.0f}s"
    return "other"


def test_events_match_by_keyword_patterns() -> None:
    assert describe(sky.Metrics(node=0, cpu_percent=5, memory_percent=1)) == "cpu 5.0"
    assert (
        describe(
            sky.Metrics(node=0, cpu_percent=5, memory_percent=1, gpu_utilization=87)
        )
        == "cpu 5.0 gpu 87"
    )
    assert (
        describe(sky.LogLine(node=2, slot=0, stream="stderr", line="oops"))
        == "err 2 oops"
    )
    spot = events.InstanceInfo(instance_id="i-1", ip="10.0.0.1", node=3, spot=True)
    assert describe(sky.InstanceProvisioned(instance=spot)) == "spot 3"
    failed = sky.FunctionResult(
        function_name="train",
        node=0,
        slot=0,
        task_id=1,
        duration_ms=3.0,
        ok=False,
        error="ValueError: bad",
    )
    assert describe(failed) == "train failed: ValueError: bad"
    final = sky.CostFinal(total_cost=1.5, duration_seconds=60)
    assert describe(final) == "$1.50 in 60s"
    assert describe(sky.PoolReady(nodes=1, slots=1, seconds=0.1)) == "other"
