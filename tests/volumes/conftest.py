"""moto's S3 on 127.0.0.1 and helpers to see what s3fs left behind."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from skyward.cluster.volumes import is_mounted
from tests.conftest import moto_server

if not os.path.exists("/dev/fuse") or shutil.which("s3fs") is None:
    pytest.skip(
        "S3 volume tests need s3fs-fuse and /dev/fuse (apt-get install s3fs)",
        allow_module_level=True,
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A boto3 S3 client on moto's server, with the client's env pointed at it."""
    import boto3

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-creds"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with moto_server(monkeypatch) as url:
        yield boto3.client("s3", endpoint_url=url)


def s3fs_processes(*paths: str | Path) -> list[psutil.Process]:
    """Running s3fs processes that serve any of ``paths``."""
    wanted = {str(p) for p in paths}
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "s3fs" and wanted & set(cmdline):
            found.append(proc)
    return found


def assert_released(*paths: str | Path, timeout: float = 10.0) -> None:
    """Nothing mounted at ``paths`` and no s3fs serving them, once it exits."""
    assert [p for p in paths if is_mounted(str(p))] == []
    deadline = time.monotonic() + timeout
    left = s3fs_processes(*paths)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if p.is_running() and p.status() != "zombie"]
    assert left == [], f"s3fs still running: {left}"
