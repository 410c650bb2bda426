"""The AWS stack program under Pulumi's mocks: what it declares, and how."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

from skyward.infra.plan import Plan, PlannedResource, record
from skyward.infra.stacks import aws as program
from skyward.infra.stacks import program_from_config
from skyward.infra.stacks.aws import AwsStackSpec
from skyward.infra.stacks.deadman import SCRIPT_PATH
from skyward.spec import S3Volume

INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
UNTAGGABLE = {"pulumi:providers:aws", ROLE_POLICY}

SSH_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClient skyward"
HOST_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost skyward"
SSH_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nclient\n-----END OPENSSH PRIVATE KEY-----\n"
)
HOST_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nhost\n-----END OPENSSH PRIVATE KEY-----\n"
)


def spec(**changes: Any) -> AwsStackSpec:
    values: dict[str, Any] = {
        "pool": "team-a100",
        "region": "eu-west-1",
        "nodes": 1,
        "instance_type": "m6i.large",
        "market": "on-demand",
        "ssh_cidrs": ("203.0.113.7/32",),
        "owner": "arn:aws:iam::123456789012:user/alice",
        "created": "2026-01-02T03:04:05+00:00",
        "ttl": 7200.0,
        "ephemeral": False,
        "idle_timeout": 600.0,
        "hourly_price": 0.096,
    }
    values.update(changes)
    return AwsStackSpec(**values)


def cloud(args: Any) -> dict[str, Any]:
    if args.typ == INSTANCE:
        index = int(args.name.split("-")[1])
        return {
            "publicIp": f"198.51.100.{10 + index}",
            "privateIp": f"10.0.0.{10 + index}",
        }
    return {}


def ami(token: str, args: Any) -> dict[str, Any]:
    return {"id": "ami-0123456789abcdef0"}


def run(stack_spec: AwsStackSpec, preview: bool = False) -> Plan:
    return record(
        lambda: program.program(
            stack_spec, SSH_PUBLIC, SSH_PRIVATE, HOST_PUBLIC, HOST_PRIVATE
        ),
        stack=stack_spec.pool,
        lookup=ami,
        cloud=None if preview else cloud,
    )


def only(plan: Plan, type_: str) -> PlannedResource:
    found = plan.of_type(type_)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def is_secret(value: Any) -> bool:
    return (
        isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig
    )


GPU_POOL = spec(
    nodes=2,
    instance_type="g4dn.xlarge",
    accelerator="T4",
    market="spot",
    volumes=(
        S3Volume(
            mount_path="/data", bucket="my-data", prefix="imagenet", read_only=True
        ),
        S3Volume(mount_path="/ckpt", bucket="my-models"),
    ),
)


def test_gpu_pool_declares_every_resource_it_needs_and_nothing_else() -> None:
    plan = run(GPU_POOL)
    assert sorted(r.type for r in plan.resources) == sorted(
        [
            "pulumi:providers:aws",
            "aws:ec2/keyPair:KeyPair",
            SECURITY_GROUP,
            "aws:iam/role:Role",
            ROLE_POLICY,
            "aws:iam/instanceProfile:InstanceProfile",
            "aws:ec2/placementGroup:PlacementGroup",
            INSTANCE,
            INSTANCE,
        ]
    )
    assert only(plan, "pulumi:providers:aws").inputs["region"] == "eu-west-1"
    assert only(plan, "aws:ec2/placementGroup:PlacementGroup").inputs["strategy"] == (
        "cluster"
    )


def test_cpu_pool_has_no_role_no_placement_group_and_no_spot() -> None:
    plan = run(spec(nodes=3))
    types = {r.type for r in plan.resources}
    assert not any(t.startswith("aws:iam/") for t in types)
    assert "aws:ec2/placementGroup:PlacementGroup" not in types
    instances = plan.of_type(INSTANCE)
    assert len(instances) == 3
    for instance in instances:
        assert "instanceMarketOptions" not in instance.inputs
        assert "iamInstanceProfile" not in instance.inputs
        assert "placementGroup" not in instance.inputs


def test_one_gpu_node_needs_no_placement_group() -> None:
    plan = run(spec(instance_type="g4dn.xlarge", accelerator="T4"))
    assert not plan.of_type("aws:ec2/placementGroup:PlacementGroup")


def test_ssh_is_open_only_to_the_given_cidrs_and_members_reach_each_other() -> None:
    group = only(
        run(spec(ssh_cidrs=("203.0.113.7/32", "198.51.100.0/24"))), SECURITY_GROUP
    )
    ingress = group.inputs["ingress"]
    assert len(ingress) == 2
    ssh = next(rule for rule in ingress if not rule.get("self"))
    assert (ssh["protocol"], ssh["fromPort"], ssh["toPort"]) == ("tcp", 22, 22)
    assert ssh["cidrBlocks"] == ["203.0.113.7/32", "198.51.100.0/24"]
    internal = next(rule for rule in ingress if rule.get("self"))
    assert internal["protocol"] == "-1"
    assert "cidrBlocks" not in internal
    assert group.inputs["egress"] == [
        {
            "protocol": "-1",
            "fromPort": 0,
            "toPort": 0,
            "cidrBlocks": ["0.0.0.0/0"],
            "ipv6CidrBlocks": ["::/0"],
        }
    ]


def test_iam_policy_reaches_exactly_the_volumes_and_read_only_means_read() -> None:
    plan = run(GPU_POOL)
    policy = json.loads(only(plan, ROLE_POLICY).inputs["policy"])
    by_resource = {
        resource: statement
        for statement in policy["Statement"]
        for resource in statement["Resource"]
    }
    assert set(by_resource) == {
        "arn:aws:s3:::my-data",
        "arn:aws:s3:::my-data/imagenet/*",
        "arn:aws:s3:::my-models",
        "arn:aws:s3:::my-models/*",
    }
    assert by_resource["arn:aws:s3:::my-data/imagenet/*"]["Action"] == ["s3:GetObject"]
    assert by_resource["arn:aws:s3:::my-data"]["Action"] == ["s3:ListBucket"]
    assert by_resource["arn:aws:s3:::my-data"]["Condition"] == {
        "StringLike": {"s3:prefix": ["imagenet/", "imagenet/*"]}
    }
    assert set(by_resource["arn:aws:s3:::my-models/*"]["Action"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert not any(r == "*" for s in policy["Statement"] for r in s["Resource"])
    role = only(plan, "aws:iam/role:Role")
    assume = json.loads(role.inputs["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_spot_instances_are_one_time_and_terminate_when_interrupted() -> None:
    for instance in run(GPU_POOL).of_type(INSTANCE):
        assert instance.inputs["instanceMarketOptions"] == {
            "marketType": "spot",
            "spotOptions": {
                "spotInstanceType": "one-time",
                "instanceInterruptionBehavior": "terminate",
            },
        }
        assert instance.inputs["instanceType"] == "g4dn.xlarge"


def test_instances_terminate_on_shutdown_and_carry_the_dead_mans_switch() -> None:
    plan = run(spec(root_volume_gb=250))
    instance = only(plan, INSTANCE)
    assert instance.inputs["instanceInitiatedShutdownBehavior"] == "terminate"
    assert instance.inputs["rootBlockDevice"] == {
        "volumeSize": 250,
        "volumeType": "gp3",
        "deleteOnTermination": True,
    }
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["ami"] == "ami-0123456789abcdef0"
    assert instance.inputs["userData"] == "[secret]"
    user_data = instance.raw_inputs["userData"]
    assert is_secret(user_data)
    text = user_data["value"]
    assert text.startswith("#cloud-config\n")
    assert SCRIPT_PATH in text
    assert 'idle_timeout="${SKYWARD_IDLE_TIMEOUT:-600}"' in text
    assert HOST_PRIVATE.splitlines()[1] in text


def test_every_taggable_resource_carries_the_skyward_tags() -> None:
    plan = run(GPU_POOL)
    expected = {
        "skyward:pool": "team-a100",
        "skyward:owner": "arn:aws:iam::123456789012:user/alice",
        "skyward:created": "2026-01-02T03:04:05+00:00",
        "skyward:ttl": "7200",
        "skyward:ephemeral": "false",
    }
    for resource in plan.resources:
        if resource.type in UNTAGGABLE:
            assert "tags" not in resource.inputs
            continue
        tags = resource.inputs["tags"]
        assert expected.items() <= tags.items(), resource.name
    for instance in plan.of_type(INSTANCE):
        assert expected.items() <= instance.inputs["volumeTags"].items()


def test_ami_lookup_asks_for_the_deep_learning_image_only_for_gpus() -> None:
    gpu = run(GPU_POOL).lookups
    cpu = run(spec()).lookups
    assert [call["token"] for call in gpu] == ["aws:ec2/getAmi:getAmi"]
    assert gpu[0]["args"]["owners"] == ["amazon"]
    assert "Deep Learning" in gpu[0]["args"]["filters"][0]["values"][0]
    assert cpu[0]["args"]["owners"] == [program.CANONICAL]
    assert "ubuntu-jammy-22.04" in cpu[0]["args"]["filters"][0]["values"][0]
    pinned = run(spec(ami="ami-0fedcba9876543210"))
    assert pinned.lookups == []
    assert only(pinned, INSTANCE).inputs["ami"] == "ami-0fedcba9876543210"


def test_outputs_list_the_nodes_and_keep_the_private_key_secret() -> None:
    plan = run(GPU_POOL)
    key = plan.outputs["ssh_private_key"]
    assert key.secret and key.value == SSH_PRIVATE
    nodes = plan.outputs["nodes"]
    assert not nodes.secret
    assert nodes.value == [
        {
            "node": index,
            "id": f"node-{index}-id",
            "public_ip": f"198.51.100.{10 + index}",
            "private_ip": f"10.0.0.{10 + index}",
            "user": "ubuntu",
            "port": 22,
            "host_key": HOST_PUBLIC,
        }
        for index in range(2)
    ]
    meta = plan.outputs["meta"].value
    assert meta["provider"] == "aws" and meta["market"] == "spot"
    assert meta["ephemeral"] is False and meta["ttl"] == 7200.0


def test_a_preview_leaves_what_only_the_cloud_knows_unknown() -> None:
    plan = run(GPU_POOL, preview=True)
    assert plan.outputs["nodes"].known is False
    instance = plan.of_type(INSTANCE)[0]
    assert instance.inputs["vpcSecurityGroupIds"] == ["(known after up)"]


def test_program_from_config_runs_the_same_program_from_stack_config() -> None:
    stack_spec = GPU_POOL
    config = {
        "skyward:spec": stack_spec.model_dump_json(),
        "skyward:sshPublicKey": SSH_PUBLIC,
        "skyward:sshPrivateKey": SSH_PRIVATE,
        "skyward:hostPublicKey": HOST_PUBLIC,
        "skyward:hostPrivateKey": HOST_PRIVATE,
    }
    pulumi.runtime.set_all_config(
        config, secret_keys=["skyward:sshPrivateKey", "skyward:hostPrivateKey"]
    )
    exported: dict[str, Any] = {}

    def from_config() -> dict[str, Any]:
        original = pulumi.export
        pulumi.export = lambda name, value: exported.__setitem__(name, value)  # type: ignore[assignment]
        try:
            program_from_config()
        finally:
            pulumi.export = original
        return exported

    try:
        from_config_plan = record(
            from_config, stack="team-a100", lookup=ami, cloud=cloud
        )
    finally:
        pulumi.runtime.set_all_config({})
    direct = run(stack_spec)

    # Registration order follows the program's awaits; compare by identity.
    def by_name(plan: Plan) -> dict[tuple[str, str], Any]:
        return {(r.type, r.name): r.inputs for r in plan.resources}

    assert by_name(from_config_plan) == by_name(direct)
    assert from_config_plan.outputs["ssh_private_key"].secret
    assert set(from_config_plan.outputs) == {"nodes", "ssh_private_key", "meta"}


def test_program_from_config_refuses_an_unknown_provider_kind() -> None:
    pulumi.runtime.set_all_config({"skyward:spec": json.dumps({"kind": "nimbus"})})
    try:
        with pytest.raises(Exception, match="nimbus"):
            record(program_from_config, stack="x", lookup=ami)
    finally:
        pulumi.runtime.set_all_config({})
