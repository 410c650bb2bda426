"""The ``skyward`` stack commands: plan end to end, and the backend commands."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_fake import FakeBackend
from typer.testing import CliRunner

from skyward.cli import app
from skyward.infra import commands
from skyward.infra.base import PoolOptions
from skyward.infra.engine import Engine, PoolStack
from skyward.infra.providers.aws import AWS
from skyward.infra.registry import parse_duration
from skyward.spec import PoolSpec

runner = CliRunner()
PLAN_ARGS = [
    "plan",
    "--provider", "aws",
    "--region", "us-east-1",
    "--accelerator", "T4",
    "--nodes", "2",
    "--allocation", "spot",
    "--volume", "s3://bucket/prefix:ro",
    "--ssh-cidr", "203.0.113.7/32",
]  # fmt: skip


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "300"})


# -- plan -------------------------------------------------------------------


@pytest.mark.usefixtures("no_pulumi", "no_aws_credentials")
def test_plan_prints_the_resource_table_with_no_cloud_and_no_pulumi() -> None:
    result = invoke(*PLAN_ARGS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "9 resources to create, no cloud call made" in out
    for expected in (
        "aws:ec2:KeyPair",
        "aws:ec2:SecurityGroup",
        "aws:iam:RolePolicy",
        "aws:ec2:PlacementGroup",
        "node-1",
        "tcp/22 from 203.0.113.7/32",
        "s3:GetObject on",
        "g4dn.xlarge spot",
        "on shutdown: terminate",
        "user data: [secret]",
        "skyward:pool=ephemeral-pool",
        "Estimated cost: $1.0520/h",
    ):
        assert expected in out, expected
    assert "PRIVATE KEY" not in out


@pytest.mark.usefixtures("no_pulumi", "no_aws_credentials")
def test_plan_json_lists_types_and_inputs_for_scripts() -> None:
    result = invoke(*PLAN_ARGS, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    types = [r["type"] for r in plan["resources"]]
    assert types.count("aws:ec2/instance:Instance") == 2
    group = next(r for r in plan["resources"] if r["name"] == "nodes")
    assert group["inputs"]["ingress"][0]["cidrBlocks"] == ["203.0.113.7/32"]
    instance = next(r for r in plan["resources"] if r["name"] == "node-0")
    assert instance["inputs"]["instanceMarketOptions"]["marketType"] == "spot"
    assert instance["inputs"]["userData"] == "[secret]"
    policy = json.loads(
        next(r for r in plan["resources"] if r["name"] == "volumes")["inputs"]["policy"]
    )
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    assert plan["hourly_price"] == pytest.approx(1.052)
    assert "PRIVATE KEY" not in result.output


@pytest.mark.usefixtures("no_pulumi")
def test_plan_reads_a_spec_file_and_flags_override_it(tmp_path: Path) -> None:
    spec = tmp_path / "pool.yaml"
    spec.write_text(
        "provider: aws\n"
        "region: eu-west-1\n"
        "nodes: 3\n"
        "cpu: 8\n"
        "allocation: on-demand\n"
        "ssh_cidrs: [198.51.100.0/24]\n"
        "volumes: ['/ckpt=s3://models/runs']\n"
        "name: team-cpu\n"
        "ttl: 7200\n"
    )
    result = invoke("plan", "--spec", str(spec), "--nodes", "2", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["stack"] == "team-cpu"
    instances = [r for r in plan["resources"] if r["type"].endswith("Instance")]
    assert len(instances) == 2
    # the cheapest type with 8 vCPUs
    assert instances[0]["inputs"]["instanceType"] == "c6i.2xlarge"
    assert "instanceMarketOptions" not in instances[0]["inputs"]
    assert instances[0]["inputs"]["tags"]["skyward:ttl"] == "7200"
    provider = next(r for r in plan["resources"] if r["type"] == "pulumi:providers:aws")
    assert provider["inputs"]["region"] == "eu-west-1"
    policy = json.loads(
        next(r for r in plan["resources"] if r["name"] == "volumes")["inputs"]["policy"]
    )
    assert "s3:PutObject" in policy["Statement"][1]["Action"]


@pytest.mark.usefixtures("no_pulumi")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accelerator", "RTX 4090"], "No AWS instance type offers"),
        (["--volume", "bucket/prefix"], "must look like s3://bucket/prefix"),
        (["--allocation", "free"], "allocation"),
        (["--region", "us-moon-1"], "unknown AWS region"),
        (["--provider", "local"], "plans are for cloud providers"),
    ],
)
def test_plan_refuses_bad_input_with_exit_code_2(args: list[str], message: str) -> None:
    result = invoke("plan", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_every_command_has_help() -> None:
    for command in (
        "plan",
        "preview",
        "ls",
        "down",
        "gc",
        "doctor",
        "install-pulumi",
        "version",
    ):
        result = invoke(command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.output


# -- commands on the backend ------------------------------------------------


def stack(
    engine: Engine,
    name: str,
    created: dt.datetime,
    ttl: float | None = None,
    nodes: int = 1,
) -> None:
    named = not name.startswith("eph-")
    provider = AWS(region="us-east-1", ssh_cidrs=["203.0.113.7/32"])
    spec = PoolSpec(
        provider=provider, name=name if named else None, ttl=ttl, nodes=nodes
    )
    made = provider.provisioner(spec, name, lambda e: None, PoolOptions())
    fingerprint = provider.fingerprint(spec)
    config = made.stack_config(None, ("203.0.113.7/32",), "arn:aws:iam::1:user/bob",
                               "on-demand", fingerprint)  # fmt: skip
    body = json.loads(config["skyward:spec"])
    body["created"] = created.isoformat()
    config["skyward:spec"] = json.dumps(body)
    PoolStack(engine, name, named, lambda e: None).up(config, fingerprint)


@pytest.fixture
def cli_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(commands, "make_engine", lambda backend: engine)
    return engine


def now() -> dt.datetime:
    # Taken when each test runs: a suite can take minutes to reach it.
    return dt.datetime.now(dt.UTC)


def test_ls_shows_name_provider_nodes_age_ttl_and_owner(cli_engine: Engine) -> None:
    stack(cli_engine, "team-a100", now() - dt.timedelta(hours=5), ttl=86400, nodes=2)
    stack(cli_engine, "eph-pool-1-abc123", now() - dt.timedelta(minutes=10))
    result = invoke("ls", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == {"team-a100", "eph-pool-1-abc123"}
    team = rows["team-a100"]
    assert (team["provider"], team["nodes"], team["ttl"]) == ("aws", 2, 86400)
    assert team["owner"] == "arn:aws:iam::1:user/bob"
    assert team["ephemeral"] is False and rows["eph-pool-1-abc123"]["ephemeral"]
    assert 5 * 3600 - 60 < team["age_seconds"] < 5 * 3600 + 60

    text = invoke("ls")
    assert text.exit_code == 0
    for expected in ("NAME", "team-a100", "5h", "1d", "bob", "ephemeral", "named"):
        assert expected in text.output


def test_down_destroys_a_named_pool(cli_engine: Engine, backend: FakeBackend) -> None:
    stack(cli_engine, "team-a100", now())
    result = invoke("down", "team-a100", "--yes")
    assert result.exit_code == 0, result.output
    assert backend.ops("destroy") == ["team-a100"]
    assert backend.stacks == {}
    missing = invoke("down", "team-a100", "--yes")
    assert missing.exit_code == 1
    assert "No stack named 'team-a100'" in missing.output


def _gc_fixture(engine: Engine) -> None:
    stack(engine, "eph-old-aaaaaa", now() - dt.timedelta(hours=3))
    stack(engine, "eph-young-bbbbbb", now() - dt.timedelta(minutes=10))
    stack(engine, "named-forever", now() - dt.timedelta(days=9))
    stack(engine, "named-expired", now() - dt.timedelta(hours=2), ttl=3600)
    stack(engine, "named-fresh", now() - dt.timedelta(hours=2), ttl=36000)


def test_gc_picks_exactly_the_expired_stacks(
    cli_engine: Engine, backend: FakeBackend
) -> None:
    _gc_fixture(cli_engine)
    dry = invoke("gc", "--older-than", "2h", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert sorted(report["would_destroy"]) == ["eph-old-aaaaaa", "named-expired"]
    assert backend.ops("destroy") == []

    result = invoke("gc", "--older-than", "2h")
    assert result.exit_code == 0, result.output
    assert sorted(backend.ops("destroy")) == ["eph-old-aaaaaa", "named-expired"]
    assert set(backend.stacks) == {"eph-young-bbbbbb", "named-forever", "named-fresh"}
    assert "destroyed eph-old-aaaaaa (ephemeral and 3h old)" in result.output
    assert "destroyed named-expired (past its TTL of 1h)" in result.output
    assert "2 destroyed, 0 to destroy, 3 kept, 0 failed" in result.output


def test_gc_clears_pending_operations_and_reports_them(
    cli_engine: Engine, backend: FakeBackend
) -> None:
    stack(cli_engine, "eph-cut-cccccc", now() - dt.timedelta(hours=4))
    urn = "urn:pulumi:eph-cut-cccccc::skyward::aws:ec2/instance:Instance::node-1"
    backend.stacks["eph-cut-cccccc"].pending_operations = [
        {"type": "creating", "resource": {"urn": urn}}
    ]
    result = invoke("gc", "--older-than", "2h")
    assert result.exit_code == 0, result.output
    assert backend.ops("import") == ["eph-cut-cccccc"]
    cleared = f"cleared pending operation of eph-cut-cccccc: creating {urn}"
    assert cleared in result.output
    assert "skyward:pool=eph-cut-cccccc" in result.output
    assert backend.ops("destroy") == ["eph-cut-cccccc"]


def test_gc_exits_1_when_a_stack_cannot_be_cleaned(
    cli_engine: Engine, backend: FakeBackend
) -> None:
    stack(cli_engine, "eph-stuck-dddddd", now() - dt.timedelta(hours=3))
    stack(cli_engine, "eph-old-eeeeee", now() - dt.timedelta(hours=3))
    backend.destroy_failures["eph-stuck-dddddd"] = "the stack is currently locked"
    result = invoke("gc", "--older-than", "2h")
    assert result.exit_code == 1
    assert "could not clean eph-stuck-dddddd" in result.output
    assert "eph-stuck-dddddd" in backend.stacks
    assert "eph-old-eeeeee" not in backend.stacks


def test_gc_refuses_an_unreadable_duration(cli_engine: Engine) -> None:
    result = invoke("gc", "--older-than", "soon")
    assert result.exit_code == 2
    assert "cannot read 'soon' as a duration" in result.output


def test_durations() -> None:
    assert parse_duration("2h") == dt.timedelta(hours=2)
    assert parse_duration("1d12h") == dt.timedelta(days=1, hours=12)
    assert parse_duration("90") == dt.timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("2 hours")


# -- the machine ------------------------------------------------------------


@pytest.mark.usefixtures("no_pulumi", "skyward_home")
def test_preview_without_pulumi_exits_3_and_says_how_to_install() -> None:
    result = invoke("preview", "team-a100")
    assert result.exit_code == 3
    assert "skyward install-pulumi" in result.output


@pytest.mark.usefixtures("no_pulumi", "skyward_home", "no_aws_credentials")
def test_doctor_fails_without_pulumi_and_warns_about_credentials() -> None:
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "[FAIL] pulumi CLI" in result.output
    assert "[warn] aws credentials: No AWS credentials were found" in result.output
    assert "[ok  ] state backend: file://" in result.output


@pytest.mark.usefixtures("pulumi_on_path", "skyward_home", "moto_server")
def test_doctor_passes_with_pulumi_credentials_and_a_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAST_API_KEY", "key")
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    assert "[ok  ] pulumi CLI:" in result.output and "v3.272.0" in result.output
    assert "[ok  ] aws credentials: arn:aws:" in result.output
    assert "[ok  ] vastai credentials" in result.output
    assert "[warn] verda credentials: set VERDA_CLIENT_ID" in result.output
