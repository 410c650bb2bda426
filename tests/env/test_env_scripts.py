"""Bootstrap plans and scripts, and nvidia-smi parsing, without SSH or GPUs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

import skyward as sky
from skyward.cluster.bootstrap import (
    apt_script,
    environment_key,
    pip_script,
    plan_bootstrap,
    probe_script,
    python_script,
    setup_script,
    step_label,
    uv_script,
)
from skyward.cluster.devices import (
    GPU_QUERY,
    MigDevice,
    assign_mig_slots,
    mig_script,
    parse_gpu_query,
    parse_mig_listing,
)
from skyward.spec import PoolSpec

RECORDED = Path(__file__).parent / "recorded"
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def spec(**values: object) -> PoolSpec:
    return sky.ComputePool(provider=sky.Verda(), **values).spec  # type: ignore[arg-type]


def test_cloud_plan_builds_a_uv_environment_keyed_by_the_image() -> None:
    image = sky.Image(pip=["numpy>=1.26", "rich"], apt=["ffmpeg"])
    plan = plan_bootstrap(spec(image=image), local=False)
    assert plan.installer == "uv"
    assert plan.env_dir == f"$HOME/.skyward/envs/{plan.key}"
    assert plan.requirements == [
        f"cloudpickle=={cloudpickle.__version__}",
        "numpy>=1.26",
        "rich",
    ]
    # Same contents in another order: same environment; anything else: another.
    same = sky.Image(pip=["rich", "numpy>=1.26"], apt=["ffmpeg"], env={"A": "1"})
    assert plan_bootstrap(spec(image=same), local=False).key == plan.key
    other = sky.Image(pip=["rich"], apt=["ffmpeg"])
    assert plan_bootstrap(spec(image=other), local=False).key != plan.key
    assert environment_key("a") == environment_key("a") != environment_key("b")


def test_cloud_scripts_say_what_they_do() -> None:
    image = sky.Image(pip=["torch==2.13.0"], apt=["ffmpeg", "libsndfile1"])
    plan = plan_bootstrap(spec(image=image), local=False)
    env = "/home/ubuntu/.skyward/envs/" + plan.key
    assert f'uv venv --python {HERE} "$ENV"' in python_script(plan, env)
    pip = pip_script(plan, env)
    assert (
        f'uv pip install --python "$ENV/bin/python" '
        f"cloudpickle=={cloudpickle.__version__} torch==2.13.0"
    ) in pip
    assert '> "$ENV/.skyward-ready"' in pip
    assert "curl -LsSf https://astral.sh/uv/install.sh | sh" in uv_script(plan)
    assert 'export UV_INSTALL_DIR="$HOME"/.skyward/bin' in uv_script(plan)
    assert (
        "$SUDO apt-get install -y -qq --no-install-recommends ffmpeg libsndfile1"
        in apt_script(image.apt)
    )
    assert 'ENV="$HOME"/.skyward/envs/' in probe_script(plan)


def test_local_plan_reuses_the_clients_interpreter_and_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYWARD_HOME", str(tmp_path))
    plan = plan_bootstrap(spec(image=sky.Image(pip=["six"])), local=True)
    assert plan.env_dir == str(tmp_path / "envs" / plan.key)
    assert plan.installer == "pip"
    assert any(p.endswith("site-packages") for p in plan.site_dirs)
    script = python_script(plan, plan.env_dir)
    assert "-m venv --without-pip" in script and "_skyward_client.pth" in script
    assert '"$ENV/bin/python" -m pip install' in pip_script(plan, plan.env_dir)
    # Nothing to install: no environment, and a bare Image means no bootstrap.
    bare = plan_bootstrap(spec(image=sky.Image(env={"A": "1"})), local=True)
    assert (bare.env_dir, bare.is_empty) == ("", True)


def test_generated_scripts_are_valid_shell() -> None:
    for local in (False, True):
        # On Local, apt packages are checked, not installed: leave them out.
        apt = [] if local else ["x"]
        image = sky.Image(pip=["a b", "c'd"], apt=apt, env={"K": "it's"})
        plan = plan_bootstrap(spec(image=image), local=local)
        for script in (
            probe_script(plan),
            uv_script(plan),
            python_script(plan, "/tmp/env dir"),
            pip_script(plan, "/tmp/env dir"),
            setup_script(plan, "/tmp/env dir", "echo $K"),
            apt_script(("x", "y")),
            mig_script(sky.NVIDIA.H100(count=2, mig=["7g.80gb"])),
        ):
            subprocess.run(["sh", "-n", "-c", script], check=True)


def test_setup_runs_with_the_environment_and_image_env(tmp_path: Path) -> None:
    image = sky.Image(env={"GREETING": "it's here"})
    plan = plan_bootstrap(spec(image=image), local=True)
    env = tmp_path / "env"
    script = setup_script(plan, str(env), 'echo "$GREETING|$VIRTUAL_ENV|$PATH"')
    out = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, check=True
    ).stdout
    greeting, venv, path = out.strip().split("|", 2)
    assert (greeting, venv) == ("it's here", str(env))
    assert path.startswith(f"{env}/bin:")
    assert step_label("x" * 80) == "setup: " + "x" * 57 + "..."


def test_gpu_query_parses_recorded_output() -> None:
    gpus = parse_gpu_query((RECORDED / "mixed-query.csv").read_text())
    assert [(g.index, g.model, g.memory_gb) for g in gpus] == [
        (0, "L40S", 45.0),
        (1, "L40S", 45.0),
        (2, "T4", 15.0),
        (3, "RTX 4090", 24.0),
        (4, "RTX 6000 Ada", 48.0),
        (5, "H200", 140.4),
    ]
    assert gpus[0].uuid == "GPU-aaaaaaaa-0000-0000-0000-000000000000"
    assert "--query-gpu=index,name,uuid,memory.total" in GPU_QUERY


def test_mig_listing_maps_each_slot_to_one_device() -> None:
    listing = (RECORDED / "h100-x2-mig-mixed.txt").read_text()
    accel = sky.NVIDIA.H100(count=2, mig=["4g.40gb", "3g.40gb"])
    slots = assign_mig_slots(parse_mig_listing(listing), accel)
    assert [(d.gpu, d.profile, d.uuid[-4:]) for d in slots] == [
        (0, "4g.40gb", "0001"),
        (0, "3g.40gb", "0002"),
        (1, "4g.40gb", "0003"),
        (1, "3g.40gb", "0004"),
    ]


def test_mig_listing_of_older_drivers() -> None:
    listing = (RECORDED / "a100-40gb-mig-r450.txt").read_text()
    devices = parse_mig_listing(listing)
    assert devices == [
        MigDevice(0, "3g.20gb", 0, "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c3238fa2/1/0"),
        MigDevice(0, "3g.20gb", 1, "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c3238fa2/2/0"),
    ]


def test_a_node_without_the_layout_is_refused() -> None:
    listing = (RECORDED / "a100-80gb-mig-3g40gb-x2.txt").read_text()
    accel = sky.NVIDIA.A100_80GB(mig=["7g.80gb"])
    expected = r"GPU 0 has MIG devices \['3g.40gb', '3g.40gb'\]"
    with pytest.raises(ValueError, match=expected):
        assign_mig_slots(parse_mig_listing(listing), accel)


def test_mig_script_enables_mig_and_creates_the_layout_on_each_gpu() -> None:
    script = mig_script(sky.NVIDIA.H100(count=2, mig=["4g.40gb", "3g.40gb"]))
    for gpu in (0, 1):
        assert f"$SUDO nvidia-smi -i {gpu} -mig 1" in script
        assert f"$SUDO nvidia-smi mig -i {gpu} -dci" in script
        assert f"$SUDO nvidia-smi mig -i {gpu} -cgi 4g.40gb,3g.40gb -C" in script
    assert script.rstrip().endswith("nvidia-smi -L")
