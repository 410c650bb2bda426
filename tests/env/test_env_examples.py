"""Examples 0, 3 and 4 run on this machine and say what they found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import skyward as sky
from tests.conftest import run_example as shared_run_example

CREDENTIALS = (
    "VERDA_CLIENT_ID",
    "VERDA_CLIENT_SECRET",
    "DATACRUNCH_CLIENT_ID",
    "DATACRUNCH_CLIENT_SECRET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
)


def run_example(name: str, tmp_path: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    env.update(
        SKYWARD_HOME=str(tmp_path / "skyward-home"),
        HOME=str(tmp_path),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return shared_run_example(name, env, timeout=180).splitlines()


def local_gpu() -> str | None:
    return sky.Local().available_instances()[0].accelerator


@pytest.mark.slow
def test_gpu_accelerators_runs_on_local(tmp_path: Path) -> None:
    out = run_example("3_gpu_accelerators.py", tmp_path)
    if local_gpu() != "L40S":
        assert out == [
            "{'gpu_available': False, 'accelerator': None, 'accelerator_count': 0}",
            "No GPU on this node: the multiplication ran on the CPU.",
        ]


def test_verda_example_says_what_credentials_to_set(tmp_path: Path) -> None:
    out = run_example("4_verda_provider.py", tmp_path)
    assert out[0].startswith("Verda: No Verda credentials: set VERDA_CLIENT_ID")
    if local_gpu() != "L40S":
        assert out[1:] == [
            "{'cuda_available': False, 'device_count': 0}",
            "No GPU on this node.",
        ]


@pytest.mark.skipif(not hasattr(sky, "AWS"), reason="sky.AWS is not in this build")
def test_providers_example_lists_this_machine_and_missing_credentials(
    tmp_path: Path,
) -> None:
    out = run_example("0_providers.py", tmp_path)
    assert out[0] == "== Local"
    assert out[1].startswith(f"   {sky.Local().available_instances()[0].name}: ")
    assert out[2:] == [
        "== AWS (GPU instances)",
        "   no credentials: No AWS credentials: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`.",
        "== Verda",
        "   no credentials: No Verda credentials: set VERDA_CLIENT_ID and "
        "VERDA_CLIENT_SECRET (an API client from Verda's console, Keys > Cloud "
        "API credentials), or pass sky.Verda(client_id=..., client_secret=...).",
    ]
