"""Fixtures of the stack tests: a Skyward home, the fake Automation API, moto."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pulumi_fake import FakeApi, FakeBackend

from skyward.infra.engine import Engine, EngineSettings
from tests.conftest import moto_server as start_moto


@pytest.fixture
def skyward_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "skyward-home"
    monkeypatch.setenv("SKYWARD_HOME", str(home))
    for name in ("SKYWARD_BACKEND", "SKYWARD_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def pulumi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable named ``pulumi`` on PATH, so the CLI check passes.

    The fake Automation API never runs it.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pulumi"
    exe.write_text("#!/bin/sh\necho v3.272.0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return exe


@pytest.fixture
def no_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-pulumi"))


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def engine(skyward_home: Path, pulumi_on_path: Path, backend: FakeBackend) -> Engine:
    return Engine(EngineSettings.load(), api=FakeApi(backend))


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1, with boto3 pointed at it and test keys."""
    with start_moto(monkeypatch) as url:
        yield url


@pytest.fixture
def no_aws_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class _CheckIp(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"203.0.113.7\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of access logs."""


@pytest.fixture
def checkip(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local stand-in for checkip.amazonaws.com answering 203.0.113.7."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CheckIp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("SKYWARD_CHECKIP_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
