"""Fixtures for environment, accelerator and discovery tests.

Every pip or uv install in these tests reads wheels built here from a local
folder, never an index: ``offline_index`` points pip and uv at it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from env_helpers import free_port, node_processes, wait_for_port
from env_wheels import build_wheel, wheel_of_installed


@pytest.fixture
def skyward_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "skyward-home"
    monkeypatch.setenv("SKYWARD_HOME", str(home))
    return home


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    build_wheel(folder, "skyward-envprobe", "1.0", "VALUE = 'probe 1.0'\n")
    return folder


@pytest.fixture
def offline_index(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip and uv install from ``wheelhouse`` only (nodes inherit this env)."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("UV_CACHE_DIR", str(wheelhouse.parent / "uv-cache"))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    wheel_of_installed(wheelhouse, "cloudpickle")
    return wheelhouse


@pytest.fixture(autouse=True)
def no_nodes_left() -> Iterator[None]:
    yield
    left = node_processes()
    for proc in left:
        proc.kill()
    assert not left, f"test left Local node processes running: {left}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server, started on 127.0.0.1 for this test session."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def no_provider_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "VERDA_CLIENT_ID",
        "VERDA_CLIENT_SECRET",
        "DATACRUNCH_CLIENT_ID",
        "DATACRUNCH_CLIENT_SECRET",
        "VAST_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # No instance metadata service to ask on a test machine.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert os.environ["HOME"]
