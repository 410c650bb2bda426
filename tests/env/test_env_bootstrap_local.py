"""The bootstrap on real Local nodes: installs, caching, errors, teardown."""

from __future__ import annotations

from pathlib import Path

import pytest
from env_helpers import node_processes

import skyward as sky
from skyward.cluster.cluster import STEP_CONNECT, STEP_RUNTIME, STEP_WORKERS
from skyward.errors import BootstrapError, ConfigurationError


@sky.compute
def probe() -> tuple[str, str]:
    import sys

    import skyward_envprobe

    return skyward_envprobe.VALUE, sys.executable


# The cluster reports these itself around the bootstrap's own steps.
CLUSTER_STEPS = {STEP_CONNECT, STEP_RUNTIME, STEP_WORKERS}


def bootstrap_steps(events: list[sky.SkywardEvent]) -> list[tuple[int, str, str]]:
    return [
        (e.node, e.step, e.status)
        for e in events
        if isinstance(e, sky.BootstrapProgress) and e.step not in CLUSTER_STEPS
    ]


@pytest.mark.slow
def test_image_package_installs_on_every_node_and_is_reused(
    skyward_home: Path, offline_index: Path
) -> None:
    image = sky.Image(pip=["skyward-envprobe==1.0"])
    first: list[sky.SkywardEvent] = []
    with sky.ComputePool(nodes=2, image=image, on_event=first.append) as pool:
        results = probe() @ pool
    assert [value for value, _ in results] == ["probe 1.0", "probe 1.0"]
    envs = list((skyward_home / "envs").iterdir())
    env = next(p for p in envs if p.is_dir())
    assert {exe for _, exe in results} == {str(env / "bin" / "python")}

    steps = bootstrap_steps(first)
    # One node builds the shared environment; the other waits and reuses it.
    assert steps.count((0, "pip", "done")) + steps.count((1, "pip", "done")) == 1
    assert ("pip", "failed") not in {(s, st) for _, s, st in steps}
    builder = next(n for n, s, st in steps if s == "pip")
    assert (1 - builder, "reuse environment", "done") in steps
    ready = env / ".skyward-ready"
    stamp = ready.stat().st_mtime_ns

    # Without the wheel, any reinstall would fail: the second pool must reuse.
    for wheel in offline_index.glob("skyward_envprobe-*.whl"):
        wheel.unlink()
    second: list[sky.SkywardEvent] = []
    with sky.ComputePool(nodes=2, image=image, on_event=second.append) as pool:
        assert [v for v, _ in probe() @ pool] == ["probe 1.0", "probe 1.0"]
    steps = bootstrap_steps(second)
    assert sorted(steps) == [
        (0, "reuse environment", "done"),
        (0, "reuse environment", "started"),
        (1, "reuse environment", "done"),
        (1, "reuse environment", "started"),
    ]
    assert ready.stat().st_mtime_ns == stamp


def test_packages_the_client_has_are_not_downloaded(
    skyward_home: Path, offline_index: Path
) -> None:
    @sky.compute
    def numpy_version() -> str:
        import numpy

        return numpy.__version__

    import numpy

    # The index holds no numpy: this only works by reusing the client's.
    with sky.ComputePool(image=sky.Image(pip=["numpy"])) as pool:
        assert numpy_version() >> pool == numpy.__version__


def test_env_and_setup_commands_reach_the_workers(
    skyward_home: Path, offline_index: Path
) -> None:
    @sky.compute
    def read() -> tuple[str, str]:
        import os
        from pathlib import Path

        return os.environ["GREETING"], Path("setup-output.txt").read_text().strip()

    image = sky.Image(
        env={"GREETING": "hello from the image"},
        setup=['echo "setup saw $GREETING" > setup-output.txt'],
    )
    events: list[sky.SkywardEvent] = []
    with sky.ComputePool(nodes=2, image=image, on_event=events.append) as pool:
        assert (
            read() @ pool
            == (("hello from the image", "setup saw hello from the image"),) * 2
        )
    label = 'setup: echo "setup saw $GREETING" > setup-output.txt'
    assert (0, label, "done") in bootstrap_steps(events)
    progress = [
        e
        for e in events
        if isinstance(e, sky.BootstrapProgress) and e.step not in CLUSTER_STEPS
    ]
    assert all(e.elapsed >= 0 and e.pool == pool.name for e in progress)


def test_a_bare_image_on_local_runs_no_bootstrap() -> None:
    events: list[sky.SkywardEvent] = []
    with sky.ComputePool(on_event=events.append) as pool:
        assert sky.compute(lambda: 1 + 1)() >> pool == 2
    assert bootstrap_steps(events) == []


def test_a_package_that_does_not_exist_fails_the_pool_and_tears_it_down(
    skyward_home: Path, offline_index: Path
) -> None:
    events: list[sky.SkywardEvent] = []
    with pytest.raises(BootstrapError) as caught:
        with sky.ComputePool(
            nodes=2,
            image=sky.Image(pip=["skyward-no-such-package-xyz"]),
            on_event=events.append,
        ):
            pytest.fail("the pool must not open")
    error = caught.value
    assert error.step == "pip"
    assert error.exit_status not in (0, None)
    message = str(error)
    assert f"Bootstrap step 'pip' failed on node {error.node}" in message
    assert "'skyward-no-such-package-xyz'" in message  # the hint names the value
    assert "skyward-no-such-package-xyz" in error.output  # pip's own words
    assert (error.node, "pip", "failed") in bootstrap_steps(events)
    assert node_processes() == []
    # A failed build leaves no environment that a later pool would reuse.
    assert not any(
        (p / ".skyward-ready").exists() for p in (skyward_home / "envs").glob("*")
    )


def test_a_failing_setup_step_names_the_node_step_and_output(
    skyward_home: Path,
) -> None:
    command = "echo preparing; echo 'disk is full' >&2; exit 3"
    with pytest.raises(BootstrapError) as caught:
        with sky.ComputePool(image=sky.Image(setup=[command])):
            pytest.fail("the pool must not open")
    error = caught.value
    assert (error.node, error.exit_status) == (0, 3)
    assert error.step == f"setup: {command}"
    assert error.output.splitlines() == ["preparing", "disk is full"]
    assert "disk is full" in str(error)
    assert f"The setup command was: {command}" in str(error)
    assert node_processes() == []


def test_missing_apt_packages_on_local_are_named_before_anything_starts() -> None:
    pool = sky.ComputePool(image=sky.Image(apt=["skyward-no-such-deb", "coreutils"]))
    with pytest.raises(ConfigurationError) as caught:
        pool.open()
    message = str(caught.value)
    assert "'skyward-no-such-deb'" in message
    assert "coreutils" not in message.split("which this machine")[0]
    assert "sudo apt-get install skyward-no-such-deb" in message
    assert node_processes() == []


def test_a_python_other_than_the_clients_is_refused_before_anything_starts() -> None:
    import sys

    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    other = "3.10" if here != "3.10" else "3.12"
    pool = sky.ComputePool(image=sky.Image(python=other))
    with pytest.raises(ConfigurationError, match=f"python='{other}'.*{here}"):
        pool.open()
    assert node_processes() == []
