"""The dead man's switch: valid shell, valid cloud-config, and it really fires."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from skyward.infra.stacks.deadman import (
    SCRIPT_PATH,
    UNIT_NAME,
    cloud_config,
    deadman_script,
)

pytestmark = pytest.mark.skipif(
    shutil.which("ss") is None, reason="needs ss (iproute2)"
)


def test_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "deadman"
    script.write_text(deadman_script(300))
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'idle_timeout="${SKYWARD_IDLE_TIMEOUT:-300}"' in script.read_text()


def test_cloud_config_installs_the_script_and_pins_the_host_key() -> None:
    text = cloud_config(90.5, "PRIVATE\nKEY\n", "ssh-ed25519 AAAA host\n")
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert document["ssh_keys"] == {
        "ed25519_private": "PRIVATE\nKEY\n",
        "ed25519_public": "ssh-ed25519 AAAA host",
    }
    files = {f["path"]: f for f in document["write_files"]}
    assert files[SCRIPT_PATH]["content"] == deadman_script(90.5)
    assert files[SCRIPT_PATH]["permissions"] == "0755"
    assert 'idle_timeout="${SKYWARD_IDLE_TIMEOUT:-91}"' in files[SCRIPT_PATH]["content"]
    unit = files[f"/etc/systemd/system/{UNIT_NAME}"]["content"]
    assert f"ExecStart={SCRIPT_PATH}" in unit and "Restart=always" in unit
    assert ["systemctl", "enable", "--now", UNIT_NAME] in document["runcmd"]


def _start(tmp_path: Path, port: int, marker: Path) -> subprocess.Popen[bytes]:
    script = tmp_path / "deadman"
    script.write_text(deadman_script(2, interval=1, ssh_port=port))
    script.chmod(0o755)
    env = dict(os.environ, SKYWARD_SHUTDOWN_CMD=f"touch {marker}")
    return subprocess.Popen([str(script)], env=env)


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.2)
    return path.exists()


def test_shuts_down_when_no_client_is_connected(tmp_path: Path) -> None:
    marker = tmp_path / "shutdown"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        proc = _start(tmp_path, listener.getsockname()[1], marker)
        try:
            assert _wait_for(marker, 30)
            assert proc.wait(10) == 0
        finally:
            proc.kill()


def test_holds_while_a_client_is_connected_then_fires_after_it_leaves(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "shutdown"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        server_side, _ = listener.accept()
        proc = _start(tmp_path, port, marker)
        try:
            # Three times the idle timeout with a client connected: no shutdown.
            assert not _wait_for(marker, 6)
            assert proc.poll() is None
            client.close()
            server_side.close()
            assert _wait_for(marker, 30)
        finally:
            proc.kill()
            client.close()
