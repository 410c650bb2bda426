"""S3 volumes mounted with s3fs on real Local pools, against moto's S3.

Every pool is checked afterwards: nothing mounted at its mount paths and no
s3fs left serving them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import skyward as sky
from skyward.cluster.volumes import STEP_MOUNT, VolumePlan, is_mounted, release_local
from skyward.errors import BootstrapError, ConfigurationError
from tests.volumes.conftest import assert_released, s3fs_processes


@sky.compute
def read_tree(root: str) -> dict[str, Any]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path) as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return {"node": sky.instance_info().node, "files": found}


@sky.compute
def write_file(path: str, text: str) -> int:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        return handle.write(text)


@sky.compute
def try_write(path: str) -> str:
    try:
        with open(path, "w") as handle:
            handle.write("nope")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror}"
    return "written"


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_read_only_and_read_write_volumes_on_two_nodes(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    s3.create_bucket(Bucket="inputs")
    s3.create_bucket(Bucket="outputs")
    s3.put_object(Bucket="inputs", Key="training/a.json", Body=b'{"a": 1}')
    s3.put_object(Bucket="inputs", Key="training/deep/b.txt", Body=b"bee")
    s3.put_object(Bucket="inputs", Key="elsewhere/c.txt", Body=b"not mounted")
    data, out = tmp_path / "data", tmp_path / "checkpoints"
    steps: list[tuple[int, str]] = []

    def on_event(event: sky.SkywardEvent) -> None:
        if isinstance(event, sky.BootstrapProgress) and event.step == STEP_MOUNT:
            steps.append((event.node, event.status))

    with sky.ComputePool(
        provider=sky.Local(),
        nodes=2,
        volume=[
            sky.S3Volume(
                mount_path=str(data),
                bucket="inputs",
                prefix="training/",
                read_only=True,
            ),
            sky.S3Volume(mount_path=str(out), bucket="outputs", prefix="runs"),
        ],
        on_event=on_event,
    ) as pool:
        assert is_mounted(str(data)) and is_mounted(str(out))
        # The keys reach s3fs in a 0600 file in the node's folder, never
        # in a command line.
        root = pool._provisioner.root  # type: ignore[union-attr]
        passwd = [p for p in root.glob("node-*/.passwd-s3fs")]
        assert len(passwd) == 1
        assert passwd[0].stat().st_mode & 0o777 == 0o600
        assert passwd[0].read_text() == "testing:s3cr3t-value\n"
        mounts = s3fs_processes(data, out)
        assert len(mounts) == 2
        assert [p for p in mounts if "s3cr3t" in " ".join(p.cmdline())] == []
        trees = read_tree(str(data)) @ pool
        written = write_file(str(out / "run1" / "model.txt"), "weights") >> pool
        refused = try_write(str(data / "new.txt")) >> pool
    expected = {"a.json": '{"a": 1}', os.path.join("deep", "b.txt"): "bee"}
    assert sorted(t["node"] for t in trees) == [0, 1]
    assert [t["files"] for t in trees] == [expected, expected]
    assert written == len("weights")
    body = s3.get_object(Bucket="outputs", Key="runs/run1/model.txt")["Body"]
    assert body.read() == b"weights"
    assert refused == "OSError: Read-only file system"
    assert sorted(steps) == [(0, "done"), (0, "started"), (1, "done"), (1, "started")]
    assert_released(data, out)
    # The pool made the mount paths, so it removed them again.
    assert not data.exists() and not out.exists()


def test_writing_a_read_only_volume_raises_oserror_in_the_task(s3: Any, tmp_path: Path):
    s3.create_bucket(Bucket="frozen")
    data = tmp_path / "ro"
    data.mkdir()

    @sky.compute
    def write(path: str) -> None:
        with open(path, "w") as handle:
            handle.write("x")

    with sky.ComputePool(
        provider=sky.Local(),
        nodes=1,
        volume=sky.S3Volume(mount_path=str(data), bucket="frozen", read_only=True),
    ) as pool:
        with pytest.raises(OSError, match="Read-only file system"):
            write(str(data / "x.txt")) >> pool
    assert_released(data)
    # The folder was the user's: it stays, empty as it was.
    assert data.is_dir() and list(data.iterdir()) == []
    assert s3.list_objects_v2(Bucket="frozen").get("KeyCount") == 0


def test_dict_form_with_session_credentials(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Temporary credentials take s3fs's environment path, not the passwd file.
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    s3.create_bucket(Bucket="dict-bucket")
    s3.put_object(Bucket="dict-bucket", Key="in/x.txt", Body=b"ex")
    data = tmp_path / "d"
    with sky.ComputePool(
        provider=sky.Local(), nodes=2, volume={str(data): "s3://dict-bucket/in/"}
    ) as pool:
        trees = read_tree(str(data)) @ pool
        write_file(str(data / "y.txt"), "why") >> pool
    assert [t["files"] for t in trees] == [{"x.txt": "ex"}, {"x.txt": "ex"}]
    body = s3.get_object(Bucket="dict-bucket", Key="in/y.txt")["Body"]
    assert body.read() == b"why"
    assert_released(data)


def test_missing_bucket_fails_the_pool_and_leaves_nothing(s3: Any, tmp_path: Path):
    s3.create_bucket(Bucket="present")
    good, bad = tmp_path / "good", tmp_path / "bad"
    before = children()
    pool = sky.ComputePool(
        provider=sky.Local(),
        nodes=2,
        volume=[
            sky.S3Volume(mount_path=str(good), bucket="present"),
            sky.S3Volume(mount_path=str(bad), bucket="no-such-bucket", prefix="p/"),
        ],
    )
    with pytest.raises(BootstrapError) as caught:
        pool.open()
    error = caught.value
    assert error.step == STEP_MOUNT
    assert error.node in (0, 1)
    message = str(error)
    assert f"Bootstrap step 'mount volumes' failed on node {error.node}" in message
    assert "s3://no-such-bucket/p/" in message
    assert "NoSuchBucket" in message
    assert_released(good, bad)
    assert not good.exists() and not bad.exists()
    assert [p for p in children() - before if psutil.pid_exists(p)] == []


def test_mount_path_in_use_or_not_empty_is_refused_before_start(
    s3: Any, tmp_path: Path
):
    s3.create_bucket(Bucket="shared")
    busy = tmp_path / "busy"
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    before = children()
    with pytest.raises(ConfigurationError, match="directory with files in it"):
        sky.ComputePool(
            provider=sky.Local(),
            volume=sky.S3Volume(mount_path=str(full), bucket="shared"),
        ).open()
    with pytest.raises(ConfigurationError, match="Two volumes mount at"):
        sky.ComputePool(
            provider=sky.Local(),
            volume={str(busy): "s3://shared/a", f"{busy}/": "s3://shared/b"},
        ).open()
    with sky.ComputePool(
        provider=sky.Local(), volume=sky.S3Volume(mount_path=str(busy), bucket="shared")
    ):
        second = sky.ComputePool(
            provider=sky.Local(),
            volume=sky.S3Volume(mount_path=str(busy), bucket="shared"),
        )
        with pytest.raises(ConfigurationError, match="already mounted there"):
            second.open()
        # The refused pool did not unmount the first one's volume, nor does
        # any pool that finds it mounted by someone else.
        assert is_mounted(str(busy))
        volumes = (sky.S3Volume(mount_path=str(busy), bucket="shared"),)
        assert release_local(VolumePlan(volumes=volumes, local=True)) == []
        assert is_mounted(str(busy))
        assert len(s3fs_processes(busy)) == 1
    assert_released(busy)
    assert (full / "keep.txt").read_text() == "mine"
    assert [p for p in children() - before if psutil.pid_exists(p)] == []


def test_a_later_step_failing_unmounts_what_was_mounted(s3: Any, tmp_path: Path):
    s3.create_bucket(Bucket="mounted-first")
    data = tmp_path / "m"
    mounted_during_setup: list[bool] = []

    def on_event(event: sky.SkywardEvent) -> None:
        if isinstance(event, sky.BootstrapProgress) and event.step.startswith("setup"):
            mounted_during_setup.append(is_mounted(str(data)))

    with pytest.raises(BootstrapError, match="Bootstrap step 'setup: exit 3'"):
        sky.ComputePool(
            provider=sky.Local(),
            nodes=2,
            volume={str(data): "s3://mounted-first/"},
            image=sky.Image(setup=["exit 3"]),
            on_event=on_event,
        ).open()
    assert mounted_during_setup and all(mounted_during_setup)
    assert_released(data)
    assert not data.exists()


KILLED_CLIENT = """
import sys, time
import skyward as sky
with sky.ComputePool(provider=sky.Local(), nodes=2, volume={sys.argv[1]: sys.argv[2]}):
    print("ready", flush=True)
    time.sleep(60)
"""


def test_a_killed_client_leaves_no_mount_behind(s3: Any, tmp_path: Path):
    import subprocess
    import sys

    s3.create_bucket(Bucket="orphans")
    mount = tmp_path / "orphan-mount"
    root = Path(__file__).parents[2]
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(mount), "s3://orphans/p/"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "ready"
    assert is_mounted(str(mount))
    client.kill()  # SIGKILL: the client cannot unmount anything
    client.wait(timeout=5)
    # The nodes notice their client is gone, stop, and unmount on the way out.
    deadline = time.monotonic() + 15
    while is_mounted(str(mount)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_released(mount)
