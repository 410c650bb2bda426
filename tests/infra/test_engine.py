"""The engine and a pool's stack, with the Automation API replaced at its boundary."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi_fake import FakeApi, FakeBackend, FakeStack

from skyward import events
from skyward.errors import PulumiNotFoundError, StackDriftError, StackError
from skyward.infra.base import PoolOptions
from skyward.infra.engine import (
    Engine,
    EngineSettings,
    PoolStack,
    call_engine,
    find_pulumi,
)
from skyward.infra.providers.aws import AWS
from skyward.spec import PoolSpec

CIDR = ("203.0.113.7/32",)
ARN = "arn:aws:iam::123456789012:user/alice"


def pool_config(
    nodes: int = 1, name: str | None = None, allocation: str = "on-demand"
) -> tuple[dict[str, str], dict[str, Any]]:
    provider = AWS(region="us-east-1", ssh_cidrs=CIDR)
    spec = PoolSpec(provider=provider, nodes=nodes, name=name, allocation=allocation)
    provisioner = provider.provisioner(spec, name or "pool-1", print, PoolOptions())
    fingerprint = provider.fingerprint(spec)
    market = "on-demand" if allocation == "on-demand" else "spot"
    return provisioner.stack_config(None, CIDR, ARN, market, fingerprint), fingerprint


class Events(list[events.SkywardEvent]):
    def progress(self) -> list[tuple[str, str, str]]:
        return [
            (e.resource, e.op, e.status)
            for e in self
            if isinstance(e, events.StackProgress)
        ]


# -- settings and the CLI check --------------------------------------------


def test_passphrase_is_generated_once_and_kept_private(skyward_home: Path) -> None:
    first = EngineSettings.load()
    mode = stat.S_IMODE(os.stat(skyward_home / "passphrase").st_mode)
    assert mode == 0o600
    assert len(first.passphrase) >= 32
    assert EngineSettings.load().passphrase == first.passphrase


def test_passphrase_and_backend_come_from_the_environment(
    skyward_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYWARD_PASSPHRASE", "team secret")
    monkeypatch.setenv("SKYWARD_BACKEND", "s3://team-bucket/skyward")
    settings = EngineSettings.load()
    assert settings.passphrase == "team secret"
    assert settings.backend == "s3://team-bucket/skyward"
    assert not (skyward_home / "passphrase").exists()
    assert EngineSettings.load(backend="s3://other/x").backend == "s3://other/x"


def test_default_backend_is_a_state_folder_in_the_skyward_home(
    skyward_home: Path,
) -> None:
    settings = EngineSettings.load()
    assert settings.backend == f"file://{skyward_home}/state"
    assert (skyward_home / "state").is_dir()


def test_workspace_options_carry_backend_passphrase_and_one_folder_per_stack(
    engine: Engine, skyward_home: Path
) -> None:
    options = engine.options("team-a100")
    assert options.work_dir == str(skyward_home / "stacks" / "team-a100")
    assert options.secrets_provider == "passphrase"
    assert options.env_vars["PULUMI_CONFIG_PASSPHRASE"] == engine.settings.passphrase
    assert options.env_vars["PULUMI_BACKEND_URL"] == engine.settings.backend
    assert options.project_settings.name == "skyward"
    assert options.project_settings.backend.url == engine.settings.backend


@pytest.mark.usefixtures("no_pulumi")
def test_missing_pulumi_cli_says_how_to_install_it(
    skyward_home: Path, backend: FakeBackend
) -> None:
    with pytest.raises(PulumiNotFoundError) as caught:
        find_pulumi()
    message = str(caught.value)
    assert "https://get.pulumi.com" in message
    assert "skyward install-pulumi" in message
    engine = Engine(EngineSettings.load(), api=FakeApi(backend))
    with pytest.raises(PulumiNotFoundError):
        engine.options("x")
    assert backend.calls == []


@pytest.mark.usefixtures("no_pulumi")
def test_pulumi_installed_by_its_installer_is_found_off_path(
    tmp_path: Path, skyward_home: Path, backend: FakeBackend
) -> None:
    exe = Path(os.environ["HOME"]) / ".pulumi" / "bin" / "pulumi"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_pulumi() == exe
    api = FakeApi(backend)
    Engine(EngineSettings.load(), api=api).command()
    assert api.commands == [str(exe.parent.parent)]


# -- ephemeral stacks -------------------------------------------------------


def test_ephemeral_stack_comes_up_reports_progress_and_is_destroyed_and_removed(
    engine: Engine, backend: FakeBackend, skyward_home: Path
) -> None:
    seen = Events()
    stack = PoolStack(engine, "eph-pool-1-abc123", False, seen.append, pool="pool-1")
    config, fingerprint = pool_config(nodes=2)
    outputs = stack.up(config, fingerprint)

    assert [n["public_ip"] for n in outputs["nodes"]] == [
        "198.51.100.10",
        "198.51.100.11",
    ]
    assert outputs["ssh_private_key"] == config["skyward:sshPrivateKey"]
    assert ("node-0", "create", "started") in seen.progress()
    assert ("node-1", "create", "done") in seen.progress()
    assert all(e.pool == "pool-1" for e in seen)
    assert (skyward_home / "stacks" / "eph-pool-1-abc123").is_dir()

    stack.teardown()
    stack.teardown()
    assert backend.ops("destroy") == ["eph-pool-1-abc123"]
    assert backend.ops("remove") == ["eph-pool-1-abc123"]
    assert backend.stacks == {}
    assert not (skyward_home / "stacks" / "eph-pool-1-abc123").exists()
    assert ("node-0", "delete", "started") in seen.progress()


def test_failed_up_is_followed_by_destroy_and_says_why(
    engine: Engine, backend: FakeBackend
) -> None:
    seen = Events()
    backend.up_failures.append(
        "aws:ec2/instance:Instance node-0: InsufficientInstanceCapacity: We "
        "currently do not have sufficient g4dn.xlarge capacity"
    )
    stack = PoolStack(engine, "eph-pool-2-abc123", False, seen.append)
    config, fingerprint = pool_config()
    with pytest.raises(StackError) as caught:
        stack.up(config, fingerprint)
    assert caught.value.capacity_refused
    assert "InsufficientInstanceCapacity" in str(caught.value)
    assert backend.calls == [
        ("create", "eph-pool-2-abc123"),
        ("up", "eph-pool-2-abc123"),
        ("destroy", "eph-pool-2-abc123"),
        ("remove", "eph-pool-2-abc123"),
    ]
    assert ("node-0", "create", "failed") in seen.progress()
    stack.teardown()
    assert backend.ops("destroy") == ["eph-pool-2-abc123"]


def test_an_error_that_is_not_about_capacity_is_not_marked_so(
    engine: Engine, backend: FakeBackend
) -> None:
    backend.up_failures.append("UnauthorizedOperation: not allowed to RunInstances")
    stack = PoolStack(engine, "eph-pool-3-abc123", False, lambda e: None)
    with pytest.raises(StackError) as caught:
        stack.up(*pool_config())
    assert not caught.value.capacity_refused
    assert backend.stacks == {}


def test_keep_true_keeps_an_ephemeral_stack(
    engine: Engine, backend: FakeBackend
) -> None:
    stack = PoolStack(engine, "eph-pool-4-abc123", False, lambda e: None, keep=True)
    stack.up(*pool_config())
    stack.teardown()
    assert backend.ops("destroy") == []
    assert "eph-pool-4-abc123" in backend.stacks


# -- named stacks -----------------------------------------------------------


def test_named_stack_is_kept_and_reused_as_is(
    engine: Engine, backend: FakeBackend
) -> None:
    config, fingerprint = pool_config(name="team-a100")
    first = PoolStack(engine, "team-a100", True, lambda e: None)
    outputs = first.up(config, fingerprint)
    first.teardown()
    assert backend.ops("destroy") == []

    second = PoolStack(engine, "team-a100", True, lambda e: None)
    stored = second.stored_config()
    assert stored is not None and stored["skyward:spec"] == config["skyward:spec"]
    again = second.up(config, fingerprint)
    assert again == outputs
    assert backend.ops("up") == ["team-a100"]
    second.teardown()
    assert "team-a100" in backend.stacks


def test_named_stack_refuses_a_different_spec_and_names_the_difference(
    engine: Engine, backend: FakeBackend
) -> None:
    PoolStack(engine, "team-a100", True, lambda e: None).up(
        *pool_config(nodes=1, name="team-a100")
    )
    stack = PoolStack(engine, "team-a100", True, lambda e: None)
    with pytest.raises(StackDriftError) as caught:
        stack.up(*pool_config(nodes=2, name="team-a100"))
    assert caught.value.differences == ["nodes: 1 -> 2"]
    assert "update=True" in str(caught.value)
    assert backend.ops("up") == ["team-a100"]
    stack.teardown()
    assert backend.ops("destroy") == []


def test_update_true_changes_a_named_stack_in_place(
    engine: Engine, backend: FakeBackend
) -> None:
    PoolStack(engine, "team-a100", True, lambda e: None).up(
        *pool_config(nodes=1, name="team-a100")
    )
    seen = Events()
    stack = PoolStack(engine, "team-a100", True, seen.append)
    outputs = stack.up(*pool_config(nodes=2, name="team-a100"), update=True)
    assert len(outputs["nodes"]) == 2
    assert backend.ops("up") == ["team-a100", "team-a100"]
    assert backend.ops("create") == ["team-a100"]
    assert ("node-1", "create", "done") in seen.progress()
    assert ("node-0", "create", "done") not in seen.progress()


def test_failed_update_of_a_named_stack_leaves_it_standing(
    engine: Engine, backend: FakeBackend
) -> None:
    PoolStack(engine, "team-a100", True, lambda e: None).up(
        *pool_config(name="team-a100")
    )
    backend.up_failures.append("VcpuLimitExceeded: You have requested more vCPU")
    stack = PoolStack(engine, "team-a100", True, lambda e: None)
    with pytest.raises(StackError):
        stack.up(*pool_config(nodes=3, name="team-a100"), update=True)
    stack.teardown()
    assert backend.ops("destroy") == []
    assert "team-a100" in backend.stacks


def test_keep_false_destroys_a_named_stack(
    engine: Engine, backend: FakeBackend
) -> None:
    stack = PoolStack(engine, "team-a100", True, lambda e: None, keep=False)
    stack.up(*pool_config(name="team-a100"))
    stack.teardown()
    assert backend.ops("destroy") == ["team-a100"]
    assert backend.stacks == {}


def test_a_teammate_without_local_config_fetches_it_from_the_backend(
    engine: Engine,
    backend: FakeBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, fingerprint = pool_config(name="team-a100")
    PoolStack(engine, "team-a100", True, lambda e: None).up(config, fingerprint)

    monkeypatch.setenv("SKYWARD_HOME", str(tmp_path / "teammate"))
    monkeypatch.setenv("SKYWARD_PASSPHRASE", engine.settings.passphrase)
    teammate = Engine(
        EngineSettings.load(backend=engine.settings.backend), api=engine.api
    )
    stack = PoolStack(teammate, "team-a100", True, lambda e: None)
    stored = stack.stored_config()
    assert backend.ops("refresh_config") == ["team-a100"]
    assert stored is not None
    assert stored["skyward:sshPrivateKey"] == config["skyward:sshPrivateKey"]
    outputs = stack.up(config, fingerprint)
    assert [n["public_ip"] for n in outputs["nodes"]] == ["198.51.100.10"]
    assert backend.ops("up") == ["team-a100"]


# -- interruption -----------------------------------------------------------


def test_cancelling_an_up_interrupts_pulumi_and_the_stack_is_destroyed(
    engine: Engine, backend: FakeBackend, tmp_path: Path
) -> None:
    """A process named ``pulumi`` stands for the CLI: SIGINT must reach it."""
    script = tmp_path / "cli" / "pulumi"
    script.parent.mkdir()
    marker = tmp_path / "interrupted"
    ready = tmp_path / "trap-set"
    script.write_text(
        "#!/bin/bash\n"
        f"trap 'touch {marker}; exit 255' INT\n"
        f"touch {ready}\n"
        "while true; do sleep 0.05; done\n"
    )
    script.chmod(0o755)
    started = threading.Event()

    def slow_up(stack: FakeStack) -> None:
        import subprocess

        proc = subprocess.Popen([str(script)])
        # SIGINT before bash has set its trap would kill it without a trace.
        while not ready.exists() and proc.poll() is None:
            time.sleep(0.01)
        started.set()
        if proc.wait(60) != 0:
            backend.up_failures.append("error: update canceled")

    backend.up_hook = slow_up
    stack = PoolStack(engine, "eph-pool-5-abc123", False, lambda e: None)

    async def scenario() -> None:
        task = asyncio.ensure_future(call_engine(stack.up, *pool_config()))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await call_engine(stack.teardown)

    asyncio.run(scenario())
    assert marker.exists()
    assert backend.ops("destroy") == ["eph-pool-5-abc123"]
    assert backend.stacks == {}
