"""The real Pulumi engine: run only where the ``pulumi`` CLI is installed.

These machines cannot install it, so here these tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pulumi import automation as auto

from skyward.infra.base import PoolOptions
from skyward.infra.engine import Engine, EngineSettings
from skyward.infra.providers.aws import AWS
from skyward.infra.registry import short_name
from skyward.spec import PoolSpec

pytestmark = [
    pytest.mark.pulumi_cli,
    pytest.mark.skipif(
        shutil.which("pulumi") is None,
        reason="needs the pulumi CLI on PATH, which cannot be installed here",
    ),
]


@pytest.fixture
def real_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("SKYWARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKYWARD_BACKEND", raising=False)
    monkeypatch.delenv("SKYWARD_PASSPHRASE", raising=False)
    return Engine(EngineSettings.load())


def test_config_secrets_listing_and_removal(real_engine: Engine) -> None:
    name = "eph-real-test-000001"
    stack = real_engine.create(name)
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n"
    stack.set_all_config(
        {
            "skyward:sshPrivateKey": auto.ConfigValue(value=secret, secret=True),
            "skyward:poolSpec": auto.ConfigValue(value="{}"),
        }
    )
    assert stack.get_all_config()["skyward:sshPrivateKey"].value == secret
    settings_file = real_engine.workspace_dir(name) / f"Pulumi.{name}.yaml"
    assert "secret\n" not in settings_file.read_text()
    assert name in [short_name(s.name) for s in real_engine.list_stacks()]

    real_engine.destroy(stack)
    assert name not in [short_name(s.name) for s in real_engine.list_stacks()]
    assert not real_engine.workspace_dir(name).joinpath("Pulumi.yaml").exists()


@pytest.mark.skipif(
    os.environ.get("SKYWARD_TEST_AWS") != "1",
    reason="previews against a real AWS account only with SKYWARD_TEST_AWS=1",
)
def test_real_preview_declares_what_the_offline_plan_shows(real_engine: Engine) -> None:
    provider = AWS(ssh_cidrs=["203.0.113.7/32"])
    spec = PoolSpec(provider=provider, nodes=2, allocation="on-demand")
    made = provider.provisioner(spec, "pool-real", lambda e: None, PoolOptions())
    fingerprint = provider.fingerprint(spec)
    config = made.stack_config(
        None, ("203.0.113.7/32",), "test", "on-demand", fingerprint
    )
    name = "eph-real-preview-000001"
    stack = real_engine.create(name)
    try:
        stack.set_all_config(
            {
                key: auto.ConfigValue(value=value, secret="Private" in key)
                for key, value in {**config, "skyward:poolSpec": "{}"}.items()
            }
        )
        preview = stack.preview()
        planned = provider.plan(spec)
        creates = preview.change_summary.get(auto.OpType.CREATE, 0)
        # The root stack resource is in a real preview, not in the mocked plan.
        assert creates == len(planned.resources) + 1
    finally:
        real_engine.destroy(stack)
