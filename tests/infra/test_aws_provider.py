"""``sky.AWS()``: checks before anything is created, and provisioning a stack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncssh
import pytest
from pulumi_fake import FakeApi, FakeBackend

import skyward as sky
from skyward import events
from skyward.errors import ConfigurationError, ProvisioningError, PulumiNotFoundError
from skyward.infra.base import PoolOptions
from skyward.infra.engine import Engine, EngineSettings
from skyward.infra.providers.aws import (
    AWS,
    AwsProvisioner,
    caller_cidr,
    check_credentials,
    ephemeral_stack_name,
)
from skyward.spec import PoolSpec

# -- refused before anything starts -----------------------------------------


def test_an_accelerator_aws_does_not_offer_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="No AWS instance type offers"):
        sky.ComputePool(provider=sky.AWS(region="us-east-1"), accelerator="RTX 4090")


def test_an_unknown_region_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown AWS region 'us-moon-1'.*eu-west-1"):
        sky.AWS(region="us-moon-1")


def test_an_unknown_region_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "mars-north-2")
    with pytest.raises(ConfigurationError, match="mars-north-2"):
        sky.ComputePool(provider=sky.AWS())


def test_ssh_cidrs_are_validated_and_normalised() -> None:
    assert AWS(ssh_cidrs=["203.0.113.7"]).ssh_cidrs == ("203.0.113.7/32",)
    assert AWS(ssh_cidrs="10.1.2.3/8").ssh_cidrs == ("10.0.0.0/8",)
    with pytest.raises(ValueError, match="'not-an-ip' is not a CIDR block"):
        AWS(ssh_cidrs=["not-an-ip"])


def test_a_named_pool_may_not_look_ephemeral() -> None:
    with pytest.raises(ConfigurationError, match="eph-"):
        sky.ComputePool(provider=sky.AWS(region="us-east-1"), name="eph-mine")


def test_instance_type_comes_from_the_catalog_unless_given() -> None:
    provider = AWS(region="us-east-1")
    assert provider.resolved_instance_type(
        PoolSpec(provider=provider, accelerator="T4")
    ) == ("g4dn.xlarge")
    assert provider.resolved_instance_type(
        PoolSpec(provider=provider, cpu=8, memory="32GB")
    ) == ("m6i.2xlarge")
    pinned = AWS(region="us-east-1", instance_type="c7i.large")
    assert pinned.resolved_instance_type(PoolSpec(provider=pinned)) == "c7i.large"


def test_ephemeral_stack_names_are_unique_and_marked() -> None:
    names = {ephemeral_stack_name("pool-abc123") for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith("eph-pool-abc123-") for n in names)


# -- AWS API checks, against moto's server on 127.0.0.1 ---------------------


def test_credentials_are_checked_against_aws(moto_server: str) -> None:
    arn = check_credentials("us-east-1")
    assert arn.startswith("arn:aws:")


@pytest.mark.usefixtures("no_aws_credentials")
def test_missing_credentials_give_a_clear_error() -> None:
    with pytest.raises(ProvisioningError, match="No AWS credentials were found"):
        check_credentials("us-east-1")


def test_the_callers_address_becomes_a_slash_32(checkip: str) -> None:
    assert caller_cidr() == "203.0.113.7/32"


def test_an_unreachable_address_service_says_to_pass_ssh_cidrs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKYWARD_CHECKIP_URL", "http://127.0.0.1:9/")
    with pytest.raises(ProvisioningError, match="ssh_cidrs="):
        caller_cidr()


# -- provisioning through the engine ----------------------------------------


def provisioner(
    engine: Engine,
    seen: list[events.SkywardEvent],
    options: PoolOptions | None = None,
    **pool: object,
) -> AwsProvisioner:
    provider = pool.pop("provider", AWS(region="us-east-1"))
    assert isinstance(provider, AWS)
    spec = PoolSpec(provider=provider, **pool)  # type: ignore[arg-type]
    made = provider.provisioner(
        spec, str(pool.get("name") or "pool-1"), seen.append, options or PoolOptions()
    )
    made.engine = engine
    return made


@pytest.mark.usefixtures("moto_server", "checkip")
def test_provision_brings_up_the_stack_and_reports_endpoints(
    engine: Engine, backend: FakeBackend
) -> None:
    seen: list[events.SkywardEvent] = []
    made = provisioner(engine, seen, nodes=2, accelerator="T4", allocation="spot")
    provisioned = asyncio.run(made.provision())

    (name,) = backend.stacks
    assert name.startswith("eph-pool-1-")
    config = backend.local_config[(str(engine.workspace_dir(name)), name)]
    spec = json.loads(config["skyward:spec"])
    assert spec["ssh_cidrs"] == ["203.0.113.7/32"]
    assert spec["owner"].startswith("arn:aws:")
    assert spec["market"] == "spot" and spec["instance_type"] == "g4dn.xlarge"

    assert [e.host for e in provisioned.endpoints] == ["198.51.100.10", "198.51.100.11"]
    assert [e.private_ip for e in provisioned.endpoints] == ["10.0.0.10", "10.0.0.11"]
    endpoint = provisioned.endpoints[0]
    assert endpoint.user == "ubuntu" and endpoint.port == 22
    client_key = asyncssh.import_private_key(endpoint.client_key)
    assert (
        client_key.export_public_key().decode().strip()
        == config["skyward:sshPublicKey"]
    )
    host_key = asyncssh.import_private_key(config["skyward:hostPrivateKey"])
    assert asyncssh.import_public_key(endpoint.host_key) == host_key.convert_to_public()
    assert provisioned.hourly_rate == pytest.approx(2 * 0.526)
    assert all(
        i.spot and i.instance_type == "g4dn.xlarge" for i in provisioned.instances
    )
    assert [e.node for e in seen if isinstance(e, events.InstanceProvisioned)] == [0, 1]

    asyncio.run(made.teardown())
    assert backend.stacks == {}


@pytest.mark.usefixtures("moto_server", "checkip")
def test_spot_refused_falls_back_to_on_demand_when_allowed(
    engine: Engine, backend: FakeBackend
) -> None:
    backend.up_failures.append(
        "creating EC2 Instance: InsufficientInstanceCapacity: There is no Spot "
        "capacity available that matches your request."
    )
    made = provisioner(engine, [], accelerator="T4", allocation="spot-if-available")
    provisioned = asyncio.run(made.provision())
    (name,) = backend.stacks
    assert backend.ops("up") == [name, name]
    assert backend.ops("destroy") == [name]
    (instance,) = [
        r
        for r in backend.stacks[name].resources
        if r.type == "aws:ec2/instance:Instance"
    ]
    assert "instanceMarketOptions" not in instance.inputs
    assert provisioned.instances[0].spot is False


@pytest.mark.usefixtures("moto_server", "checkip")
def test_spot_refused_is_an_error_when_spot_was_demanded(
    engine: Engine, backend: FakeBackend
) -> None:
    backend.up_failures.append("InsufficientInstanceCapacity: no Spot capacity")
    made = provisioner(engine, [], accelerator="T4", allocation="spot")
    with pytest.raises(ProvisioningError, match="InsufficientInstanceCapacity"):
        asyncio.run(made.provision())
    assert backend.stacks == {}
    asyncio.run(made.teardown())


@pytest.mark.usefixtures("moto_server", "checkip")
def test_named_pool_is_reused_and_a_teammate_joins_the_ssh_rule(
    engine: Engine, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = provisioner(engine, [], name="team-a100")
    one = asyncio.run(first.provision())
    asyncio.run(first.teardown())
    assert set(backend.stacks) == {"team-a100"}

    again = provisioner(engine, [], name="team-a100")
    two = asyncio.run(again.provision())
    assert backend.ops("up") == ["team-a100"]
    assert [e.host for e in two.endpoints] == [e.host for e in one.endpoints]
    assert two.endpoints[0].client_key == one.endpoints[0].client_key

    monkeypatch.setattr(
        "skyward.infra.providers.aws.caller_cidr", lambda: "198.51.100.99/32"
    )
    teammate = provisioner(engine, [], name="team-a100")
    asyncio.run(teammate.provision())
    group = next(
        r
        for r in backend.stacks["team-a100"].resources
        if r.type == "aws:ec2/securityGroup:SecurityGroup"
    )
    ssh_rule = next(rule for rule in group.inputs["ingress"] if not rule.get("self"))
    assert ssh_rule["cidrBlocks"] == ["203.0.113.7/32", "198.51.100.99/32"]
    assert backend.ops("destroy") == []


@pytest.mark.usefixtures("no_pulumi", "no_aws_credentials")
def test_missing_pulumi_is_reported_before_credentials_or_anything_else(
    skyward_home: Path, backend: FakeBackend
) -> None:
    made = provisioner(Engine(EngineSettings.load(), api=FakeApi(backend)), [])
    with pytest.raises(PulumiNotFoundError):
        asyncio.run(made.provision())
    assert backend.calls == []


@pytest.mark.usefixtures("no_aws_credentials", "checkip")
def test_missing_credentials_stop_provisioning_before_any_stack(
    engine: Engine, backend: FakeBackend
) -> None:
    made = provisioner(engine, [])
    with pytest.raises(ProvisioningError, match="No AWS credentials"):
        asyncio.run(made.provision())
    assert backend.calls == []
    asyncio.run(made.teardown())


def test_sky_aws_is_exported() -> None:
    assert sky.AWS is AWS
    assert "AWS" in sky.__all__
