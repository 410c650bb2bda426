"""The mount step's script as a cloud node gets it; shell syntax of both kinds."""

from __future__ import annotations

import subprocess

import pytest

from skyward.cluster.bootstrap import plan_bootstrap
from skyward.cluster.volumes import VolumePlan, mount_script, mounts_escape
from skyward.errors import ConfigurationError
from skyward.infra.providers.local import Local
from skyward.spec import PoolSpec, S3Volume

VOLUMES = (
    S3Volume(mount_path="/data", bucket="my-data", prefix="training/", read_only=True),
    S3Volume(mount_path="/checkpoints", bucket="my-models"),
)


def test_cloud_script_installs_s3fs_and_uses_the_instance_profile():
    plan = VolumePlan(volumes=VOLUMES, local=False, tag="skyward-s3fs-t")
    script = mount_script(plan, node=3)
    assert "apt-get install -y -qq --no-install-recommends s3fs" in script
    assert "if ! command -v s3fs" in script
    assert (
        '$SETSID s3fs my-data:/training "$M" -f -o '
        '"iam_role=auto,fsname=skyward-s3fs-t,dbglevel=err,ro"' in script
    )
    assert (
        '$SETSID s3fs my-models "$M" -f -o '
        '"iam_role=auto,fsname=skyward-s3fs-t,dbglevel=err" ' in script
    )
    assert '$SUDO mkdir -p "$M"' in script
    assert "passwd" not in script
    assert 'LOG="$LOGS/s3fs-3-1.log"' in script
    subprocess.run(["sh", "-n", "-c", script], check=True)


def test_cloud_plan_keeps_a_custom_endpoint():
    plan = VolumePlan(volumes=VOLUMES[:1], local=False, url="http://127.0.0.1:9000")
    script = mount_script(plan, node=0)
    assert "url=http://127.0.0.1:9000,use_path_request_style" in script


def test_local_script_reads_keys_from_stdin():
    plan = VolumePlan(volumes=VOLUMES, local=True, url="http://127.0.0.1:1")
    script = mount_script(plan, node=0)
    subprocess.run(["sh", "-n", "-c", script], check=True)
    assert "fusermount" not in script  # Local refuses a used path, never unmounts


def test_mount_paths_compare_as_proc_mounts_writes_them():
    assert mounts_escape("/a b/c\\d") == "/a\\040b/c\\134d"


def test_one_mount_path_twice_is_refused_for_clouds_too():
    spec = PoolSpec(
        provider=Local(), volumes={"/data": "s3://a/x", "/data/": "s3://b/y"}
    )
    with pytest.raises(ConfigurationError, match="Two volumes mount at '/data'"):
        plan_bootstrap(spec, local=False)
