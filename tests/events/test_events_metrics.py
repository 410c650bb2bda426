"""The node sampler: parsing /proc and nvidia-smi, the sampler process, GPUs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from events_helpers import Recorder

import skyward as sky
from skyward.cluster.metrics import to_event
from skyward.runtime.metrics import (
    cpu_percent,
    parse_meminfo,
    parse_nvidia_smi,
    parse_proc_stat,
)

# `nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total
#  --format=csv,noheader,nounits` on a node with two GPUs, one of them busy.
TWO_GPUS = "87, 40532, 81559\n3, 1024, 81559\n"
# The same query with MIG enabled: utilization is not reported per GPU.
MIG = "[N/A], 13, 40960\n"
# A GPU that does not report memory (some consumer boards).
NO_MEMORY = "45, [Not Supported], [Not Supported]\n"

PROC_STAT_1 = """\
cpu  12760 0 3886 174670 557 0 108 16 0 0
cpu0 3313 0 1340 91127 183 0 17 5 0 0
intr 1234 0 0
"""
PROC_STAT_2 = """\
cpu  12860 0 3936 174770 607 0 108 16 0 0
cpu0 3363 0 1365 91177 208 0 17 5 0 0
"""
MEMINFO = """\
MemTotal:       16000000 kB
MemFree:         1000000 kB
MemAvailable:   12000000 kB
Buffers:          200000 kB
Cached:          9000000 kB
"""


def test_nvidia_smi_rows_become_utilization_and_memory_share() -> None:
    gpus = parse_nvidia_smi(TWO_GPUS)
    assert gpus == [
        {"util": 87.0, "mem": pytest.approx(100 * 40532 / 81559)},
        {"util": 3.0, "mem": pytest.approx(100 * 1024 / 81559)},
    ]


def test_nvidia_smi_fields_a_gpu_does_not_report_become_none() -> None:
    assert parse_nvidia_smi(MIG) == [{"util": None, "mem": pytest.approx(13 / 409.6)}]
    assert parse_nvidia_smi(NO_MEMORY) == [{"util": 45.0, "mem": None}]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found\n") == []


def test_cpu_share_is_busy_time_over_total_time_between_samples() -> None:
    before, after = parse_proc_stat(PROC_STAT_1), parse_proc_stat(PROC_STAT_2)
    # busy: user +100, system +50; idle +100, iowait +50
    assert cpu_percent(before, after) == pytest.approx(100 * 150 / 300)
    assert cpu_percent(after, after) == 0.0
    with pytest.raises(ValueError, match="no aggregate"):
        parse_proc_stat("cpu0 1 2 3 4\n")


def test_memory_share_is_what_is_not_available() -> None:
    assert parse_meminfo(MEMINFO) == pytest.approx(25.0)
    old_kernel = MEMINFO.replace("MemAvailable:   12000000 kB\n", "")
    assert parse_meminfo(old_kernel) == pytest.approx(100 * 6000000 / 16000000)


def test_a_sample_becomes_a_metrics_event_with_gpus_averaged() -> None:
    sample = {
        "time": 1767225600.5,
        "cpu": 12.5,
        "memory": 40.0,
        "gpus": parse_nvidia_smi(TWO_GPUS),
    }
    event = to_event("pool-1", 3, sample)
    assert event == sky.Metrics(
        pool="pool-1",
        timestamp=1767225600.5,
        node=3,
        cpu_percent=12.5,
        memory_percent=40.0,
        gpu_utilization=45.0,
        gpu_memory_percent=pytest.approx(100 * (40532 + 1024) / 2 / 81559),
    )
    plain = to_event("pool-1", 0, {"cpu": 1, "memory": 2, "gpus": []})
    assert plain.gpu_utilization is None and plain.gpu_memory_percent is None


def test_the_sampler_stops_when_its_stdin_closes() -> None:
    # A closed stdin is how a node's sampler learns that its client went away:
    # it exits at once instead of waiting out its 30 s interval.
    out = subprocess.run(
        [sys.executable, "-m", "skyward.runtime.metrics", "--interval", "30"],
        input=b"",
        capture_output=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == b""


def test_the_sampler_writes_one_json_line_per_interval() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "skyward.runtime.metrics", "--interval", "0.1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    for sample in lines:
        assert set(sample) == {"time", "cpu", "memory", "gpus"}
        assert 0 <= sample["cpu"] <= 100
        assert 0 < sample["memory"] <= 100
    assert lines[0]["time"] < lines[1]["time"] < lines[2]["time"]


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``nvidia-smi`` on PATH that answers the sampler's query with TWO_GPUS.

    Local nodes inherit this process's environment, so their samplers find it.
    """
    script = tmp_path / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  *--query-gpu=utilization.gpu,memory.used,memory.total*) ;;\n"
        '  *) echo "unexpected arguments: $*" >&2; exit 2 ;;\n'
        "esac\n"
        f"printf '{TWO_GPUS.replace(chr(10), chr(92) + 'n')}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return script


def test_gpu_use_reaches_the_client_from_nvidia_smi_on_the_node(
    fake_nvidia_smi: Path, recorder: Recorder
) -> None:
    with sky.ComputePool(console=False, on_event=recorder, metrics_interval=0.2):
        recorder.wait_for(lambda r: len(r.of(sky.Metrics)) >= 2)
    for event in recorder.of(sky.Metrics):
        assert event.gpu_utilization == pytest.approx(45.0)
        assert event.gpu_memory_percent == pytest.approx(
            100 * (40532 + 1024) / 2 / 81559
        )
