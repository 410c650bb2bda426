"""The cloud bootstrap (uv, GPU probe, MIG) run for real on Local nodes.

``CloudLikeLocal`` is Local with the cloud's bootstrap: uv builds the
environment under ``$HOME/.skyward/envs`` from an offline wheel folder. The
node has no GPU, so ``nvidia-smi`` is a script that answers with the
outputs in tests/env/recorded and logs the commands it was given.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from env_helpers import node_processes

import skyward as sky
from skyward.cluster.cluster import STEP_CONNECT, STEP_RUNTIME, STEP_WORKERS
from skyward.errors import BootstrapError
from skyward.spec import PoolSpec

RECORDED = Path(__file__).parent / "recorded"


class CloudLikeLocal(sky.Local):
    """Local nodes bootstrapped as a cloud node would be."""

    on_this_machine = False

    def check(self, spec: PoolSpec) -> None:
        """A cloud provider accepts any GPU; the node's GPU is checked later."""


@pytest.fixture
def node_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $HOME for the nodes; this interpreter's bin dir (uv, python) on PATH."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed (pip install uv)")
    home = tmp_path / "node-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    uv_dir = os.path.dirname(shutil.which("uv") or "")
    path = [os.path.dirname(sys.executable), uv_dir, os.environ["PATH"]]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    return home


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "gpu"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {folder}/calls.log\n'
        'case "$*" in\n'
        "  *mig.mode.current*) echo Enabled ;;\n"
        f"  *--query-gpu=index,name,uuid,memory.total*) cat {folder}/query.csv ;;\n"
        f"  -L) cat {folder}/listing.txt ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    shutil.copy(RECORDED / "a100-80gb-query.csv", folder / "query.csv")
    shutil.copy(RECORDED / "a100-80gb-mig-3g40gb-x2.txt", folder / "listing.txt")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@sky.compute
def where_am_i() -> dict[str, Any]:
    import os
    import sys

    import skyward_envprobe

    info = sky.instance_info()
    return {
        "slot": info.slot,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "devices": info.devices,
        "accelerator": info.accelerator,
        "count": info.accelerator_count,
        "memory": info.accelerator_memory_gb,
        "probe": skyward_envprobe.VALUE,
        "python": sys.executable,
        "venv": os.environ.get("VIRTUAL_ENV"),
    }


@pytest.mark.slow
def test_mig_layout_gives_one_slot_per_device_in_a_uv_environment(
    node_home: Path, fake_nvidia_smi: Path, offline_index: Path
) -> None:
    accelerator = sky.AcceleratorSpec.NVIDIA.A100(mig=["3g.40gb", "3g.40gb"])
    events: list[sky.SkywardEvent] = []
    with sky.ComputePool(
        provider=CloudLikeLocal(),
        accelerator=accelerator,
        image=sky.Image(pip=["skyward-envprobe==1.0"]),
        on_event=events.append,
    ) as pool:
        assert pool.total_slots == 2
        # Four calls at once fill both slots (each takes two to start with).
        results = sky.gather(*(where_am_i() for _ in range(4))) >> pool
    seen = sorted({r["slot"]: r for r in results}.values(), key=lambda r: r["slot"])
    assert len(seen) == 2
    envs = node_home / ".skyward" / "envs"
    (env,) = [p for p in envs.iterdir() if p.is_dir()]
    uuids = [
        "MIG-a1b2c3d4-5e6f-5a7b-8c9d-0e1f2a3b4c5d",
        "MIG-b2c3d4e5-6f7a-5b8c-9d0e-1f2a3b4c5d6e",
    ]
    for slot, result in enumerate(seen):
        assert result == {
            "slot": slot,
            "cuda": uuids[slot],
            "devices": [uuids[slot]],
            "accelerator": "A100-80GB",
            "count": 1,
            "memory": 40.0,
            "probe": "probe 1.0",
            "python": str(env / "bin" / "python"),
            "venv": str(env),
        }
    calls = (fake_nvidia_smi / "calls.log").read_text().splitlines()
    assert "mig -i 0 -cgi 3g.40gb,3g.40gb -C" in calls
    assert calls[-1] == "-L"
    cluster_steps = {STEP_CONNECT, STEP_RUNTIME, STEP_WORKERS}
    steps = [
        e.step
        for e in events
        if isinstance(e, sky.BootstrapProgress)
        and e.status == "done"
        and e.step not in cluster_steps
    ]
    assert steps == ["mig", "uv", "python", "pip"]


@pytest.mark.slow
def test_gpu_probe_fills_devices_and_refuses_the_wrong_gpu(
    node_home: Path, fake_nvidia_smi: Path, offline_index: Path
) -> None:
    @sky.compute
    def devices() -> tuple[list[str], str | None, float]:
        info = sky.instance_info()
        return info.devices, info.accelerator, info.accelerator_memory_gb

    with sky.ComputePool(provider=CloudLikeLocal(), accelerator="A100-80GB") as pool:
        assert devices() >> pool == (
            ["GPU-5f3c9d0e-8a2b-4c1d-9e7f-0a1b2c3d4e5f"],
            "A100-80GB",
            80.0,
        )

    with pytest.raises(BootstrapError) as caught:
        with sky.ComputePool(provider=CloudLikeLocal(), accelerator="H100"):
            pytest.fail("the pool must not open")
    assert caught.value.step == "gpu"
    assert "1 x H100; the node has: NVIDIA A100-SXM4-80GB (80 GB)" in str(caught.value)
    assert node_processes() == []
