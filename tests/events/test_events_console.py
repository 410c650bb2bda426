"""The default console: plain lines off a terminal, a live rich view on one."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import skyward as sky
from skyward import events
from skyward.console import LiveConsole, PlainConsole, default_console

ROOT = Path(__file__).resolve().parents[2]
POOL = r"pool-[0-9a-f]{6}"


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    """Run an example with stdout and stderr going to pipes, as in CI."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.pop("SKYWARD_PROVIDER", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )


def test_plain_console_describes_lifecycle_events() -> None:
    plain = PlainConsole()
    cloud = events.InstanceInfo(
        instance_id="i-0abc",
        ip="3.91.20.7",
        node=1,
        spot=True,
        instance_type="g4dn.xlarge",
        hourly_price=0.1578,
    )
    local = events.InstanceInfo(instance_id="local-42", ip="127.0.0.1", node=0)
    cases = [
        (
            events.ProvisioningStarted(provider="aws", nodes=1),
            "provisioning 1 node on aws",
        ),
        (
            events.InstanceProvisioned(instance=cloud),
            "node 1 up: i-0abc at 3.91.20.7 (g4dn.xlarge, spot, $0.1578/h)",
        ),
        (
            events.InstanceProvisioned(instance=local),
            "node 0 up: local-42 at 127.0.0.1",
        ),
        (
            events.BootstrapProgress(node=0, step="pip", elapsed=0.2, status="done"),
            None,
        ),
        (
            events.BootstrapProgress(node=0, step="pip", elapsed=12.34, status="done"),
            "node 0 pip: done in 12.3s",
        ),
        (
            events.BootstrapProgress(node=2, step="apt", elapsed=3.0, status="failed"),
            "node 2 failed at apt after 3.0s",
        ),
        (events.BootstrapProgress(node=0, step="pip"), None),
        (
            events.PoolReady(nodes=2, slots=8, seconds=61.25),
            "ready: 2 nodes x 4 slots in 61.2s",
        ),
        (
            events.NodeLost(node=1, reason="spot reclaimed"),
            "node 1 lost: spot reclaimed",
        ),
        (events.Metrics(node=0, cpu_percent=1, memory_percent=2), None),
        (
            events.CostFinal(total_cost=0, duration_seconds=3.14),
            "stopped after 3.1s; cost $0.00",
        ),
    ]
    for event, expected in cases:
        assert plain.describe(event) == expected, event
    stopped = events.PoolStopped(error="CostLimitExceeded: Pool p reached its limit")
    assert plain.describe(stopped) is None
    assert (
        plain.describe(events.CostFinal(total_cost=12.5, duration_seconds=600))
        == "stopped after 600.0s (CostLimitExceeded: Pool p reached its limit); "
        "cost $12.50"
    )


def test_default_console_follows_the_console_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert default_console(sky.ComputePool(console=False)) is None
    assert isinstance(default_console(sky.ComputePool(console=True)), LiveConsole)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert isinstance(default_console(sky.ComputePool()), PlainConsole)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert isinstance(default_console(sky.ComputePool()), LiveConsole)


def test_event_monitoring_example_prints_plain_lines_to_a_pipe() -> None:
    out = run_example("9_event_monitoring.py")
    status = out.stderr.splitlines()
    patterns = [
        rf"skyward: pool {POOL} provisioning 1 node on local",
        rf"skyward: pool {POOL} node 0 up: local-\d+ at 127\.0\.0\.1",
        rf"skyward: pool {POOL} ready: 1 node x 1 slot in \d+\.\ds",
        rf"skyward: pool {POOL} stopped after \d+\.\ds; cost \$0\.00",
    ]
    assert len(status) == len(patterns), out.stderr
    for line, pattern in zip(status, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert len({re.search(POOL, line).group() for line in status}) == 1  # type: ignore[union-attr]

    lines = out.stdout.splitlines()
    # The console's node prefix and the example's own callback, for each print.
    for i in range(10):
        assert f"[node 0] Step {i}" in lines
        assert f"[Node 0] Step {i}" in lines
    assert lines[:3] == [
        "Installing: connect",
        "Installing: upload runtime",
        "Installing: start workers",
    ]
    assert all(
        re.fullmatch(r"CPU: \d+\.\d%, GPU: None%", x) for x in lines if "CPU" in x
    )
    assert lines[-1] == "Total cost: $0.00"


def test_custom_callbacks_example_prints_the_guide_lines() -> None:
    out = run_example("21_custom_callbacks.py")
    expected = [
        r"\[LOG\] Provisioning started\.\.\.",
        r"\[LOG\] Instance local-\d+ at 127\.0\.0\.1",
        r"\[LOG\] Pool ready!",
        *[r"\[LOG\] train_step completed in \d+\.\dms"] * 5,
        r"\[COST\] Final: \$0\.000 \(0\.0 min\)",
        r"\[LOG\] Provisioning started\.\.\.",
        r"\[LOG\] Instance local-\d+ at 127\.0\.0\.1",
        r"\[LOG\] Pool ready!",
        r"\[LOG\] train_step completed in \d+\.\dms",
    ]
    lines = out.stdout.splitlines()
    assert len(lines) == len(expected), out.stdout
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert len(out.stderr.splitlines()) == 8  # four plain lines per pool


@sky.compute
def work(i: int) -> int:
    print(f"working on {i}")
    return i


def test_live_console_draws_phases_nodes_tasks_and_cost() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=100)
    view = LiveConsole(console=screen)
    with sky.ComputePool(nodes=2, console=False, on_event=view) as pool:
        view.pool = pool
        assert sky.gather(*(work(i) for i in range(5))) >> pool == (0, 1, 2, 3, 4)
        during = Console(file=io.StringIO(), width=100, record=True)
        during.print(view.render())
    text = during.export_text()
    assert pool.name in text and "local" in text and "2 nodes x 1 slot" in text
    assert re.search(r"Provisioning\s.*2/2", text)
    assert re.search(r"Bootstrap\s.*2/2", text)
    assert re.search(r"^\W*0\s+ready\s", text, re.M)
    assert re.search(r"^\W*1\s+ready\s", text, re.M)
    assert "Tasks 5 done, 0 running" in text
    assert "Cost $0.00 at $0.00/h" in text

    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    for i in range(5):
        assert f"working on {i}" in drawn
    assert "stopped" in drawn  # the final state stays on screen
    assert view._board is None


def test_two_pools_share_one_live_display() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=100)
    first, second = LiveConsole(console=screen), LiveConsole(console=screen)
    with sky.ComputePool(console=False, on_event=first) as a:
        with sky.ComputePool(console=False, on_event=second) as b:
            assert first._board is second._board is not None
            assert work(1) >> a == 1 and work(2) >> b == 2
        assert second._board is None and first._board is not None
    assert first._board is None
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert a.name in drawn and b.name in drawn
