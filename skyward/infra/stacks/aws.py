"""The Pulumi program of an AWS pool.

::

    AwsStackSpec + keys ──> aws.Provider (the spec's region)
                            ├─ ec2.KeyPair        client key, imported
                            ├─ ec2.SecurityGroup  SSH from ssh_cidrs, all within
                            ├─ iam.Role + Policy + InstanceProfile  (S3 volumes)
                            ├─ ec2.PlacementGroup (GPU pools of > 1 node)
                            └─ ec2.Instance x nodes  spot or on-demand,
                                                     terminate on shutdown
    outputs: nodes (id, addresses, user, port, host key), ssh_private_key (secret)

Everything the program needs is in :class:`AwsStackSpec` and the key pair
texts, which the engine keeps in stack config; the program reads nothing
else, so ``pulumi preview`` through ``Pulumi.yaml`` runs the same program
from the same config.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict

from skyward.infra.stacks.deadman import cloud_config
from skyward.spec import S3Volume

# Canonical's account; the Deep Learning AMIs are published by Amazon.
CANONICAL = "099720109477"
UBUNTU_AMI = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
GPU_AMI = "Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *"

S3_READ_ACTIONS = ("s3:GetObject",)
S3_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


class AwsStackSpec(BaseModel):
    """Everything an AWS pool's stack is made from, resolved and stored as config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["aws"] = "aws"
    pool: str
    region: str
    nodes: int
    instance_type: str
    accelerator: str | None = None
    ami: str | None = None
    market: Literal["spot", "on-demand"] = "on-demand"
    root_volume_gb: int = 100
    ssh_cidrs: tuple[str, ...]
    ssh_user: str = "ubuntu"
    volumes: tuple[S3Volume, ...] = ()
    idle_timeout: float = 300.0
    ttl: float | None = None
    ephemeral: bool = True
    owner: str = ""
    created: str = ""
    hourly_price: float | None = None

    @property
    def placement_group(self) -> bool:
        # NCCL across nodes wants them close; CPU pools need not pay for it.
        return self.nodes > 1 and self.accelerator is not None

    def tags(self) -> dict[str, str]:
        return {
            "skyward:pool": self.pool,
            "skyward:owner": self.owner,
            "skyward:created": self.created,
            "skyward:ttl": "none" if self.ttl is None else f"{self.ttl:.0f}",
            "skyward:ephemeral": "true" if self.ephemeral else "false",
            "Name": f"skyward-{self.pool}",
        }


def ami_filters(accelerator: str | None) -> tuple[list[str], str]:
    """Owners and name pattern of the image an instance boots by default."""
    if accelerator is not None:
        return ["amazon"], GPU_AMI
    return [CANONICAL], UBUNTU_AMI


def s3_policy(volumes: tuple[S3Volume, ...]) -> dict[str, Any]:
    """An IAM policy that reaches exactly the volumes' buckets and prefixes.

    Read-only volumes get only read actions; listing is limited to the prefix.
    """
    statements: list[dict[str, Any]] = []
    for index, volume in enumerate(volumes):
        objects = f"arn:aws:s3:::{volume.bucket}/{volume.prefix}*"
        actions = list(S3_READ_ACTIONS)
        if not volume.read_only:
            actions += S3_WRITE_ACTIONS
        list_statement: dict[str, Any] = {
            "Sid": f"List{index}",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{volume.bucket}"],
        }
        if volume.prefix:
            list_statement["Condition"] = {
                "StringLike": {"s3:prefix": [volume.prefix, f"{volume.prefix}*"]}
            }
        statements.append(list_statement)
        statements.append(
            {
                "Sid": f"Objects{index}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": [objects],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def program(
    spec: AwsStackSpec,
    ssh_public_key: str,
    ssh_private_key: pulumi.Input[str],
    host_public_key: str,
    host_private_key: pulumi.Input[str],
) -> dict[str, pulumi.Output[Any]]:
    """Declare the pool's resources; return the stack outputs to export."""
    tags = spec.tags()
    provider = aws.Provider("aws", region=spec.region)
    opts = pulumi.ResourceOptions(provider=provider)

    key_pair = aws.ec2.KeyPair(
        "ssh-key",
        key_name_prefix=f"skyward-{spec.pool}-",
        public_key=ssh_public_key,
        tags=tags,
        opts=opts,
    )
    group = aws.ec2.SecurityGroup(
        "nodes",
        name_prefix=f"skyward-{spec.pool}-",
        description=f"Skyward pool {spec.pool}: SSH from the client, all within",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                description="SSH from the Skyward client",
                protocol="tcp",
                from_port=22,
                to_port=22,
                cidr_blocks=list(spec.ssh_cidrs),
            ),
            aws.ec2.SecurityGroupIngressArgs(
                description="All traffic between the pool's nodes (NCCL, torch)",
                protocol="-1",
                from_port=0,
                to_port=0,
                self=True,
            ),
        ],
        egress=[
            aws.ec2.SecurityGroupEgressArgs(
                protocol="-1",
                from_port=0,
                to_port=0,
                cidr_blocks=["0.0.0.0/0"],
                ipv6_cidr_blocks=["::/0"],
            )
        ],
        tags=tags,
        opts=opts,
    )

    profile = _instance_profile(spec, tags, opts) if spec.volumes else None
    placement = (
        aws.ec2.PlacementGroup("placement", strategy="cluster", tags=tags, opts=opts)
        if spec.placement_group
        else None
    )
    ami: pulumi.Input[str]
    if spec.ami is not None:
        ami = spec.ami
    else:
        owners, pattern = ami_filters(spec.accelerator)
        ami = aws.ec2.get_ami_output(
            most_recent=True,
            owners=owners,
            filters=[
                aws.ec2.GetAmiFilterArgs(name="name", values=[pattern]),
                aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"]),
            ],
            opts=pulumi.InvokeOutputOptions(provider=provider),
        ).id

    user_data = pulumi.Output.secret(host_private_key).apply(
        lambda key: cloud_config(spec.idle_timeout, key, host_public_key)
    )
    market = (
        aws.ec2.InstanceInstanceMarketOptionsArgs(
            market_type="spot",
            spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
                spot_instance_type="one-time",
                instance_interruption_behavior="terminate",
            ),
        )
        if spec.market == "spot"
        else None
    )
    instances = [
        aws.ec2.Instance(
            f"node-{index}",
            ami=ami,
            instance_type=spec.instance_type,
            key_name=key_pair.key_name,
            vpc_security_group_ids=[group.id],
            associate_public_ip_address=True,
            iam_instance_profile=profile.name if profile is not None else None,
            placement_group=placement.name if placement is not None else None,
            instance_market_options=market,
            instance_initiated_shutdown_behavior="terminate",
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=spec.root_volume_gb,
                volume_type="gp3",
                delete_on_termination=True,
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_tokens="required", http_endpoint="enabled"
            ),
            user_data=user_data,
            user_data_replace_on_change=True,
            tags={**tags, "skyward:node": str(index)},
            volume_tags=tags,
            opts=opts,
        )
        for index in range(spec.nodes)
    ]

    nodes = pulumi.Output.all(
        *[pulumi.Output.all(i.id, i.public_ip, i.private_ip) for i in instances]
    ).apply(
        lambda rows: [
            {
                "node": index,
                "id": row[0],
                "public_ip": row[1],
                "private_ip": row[2],
                "user": spec.ssh_user,
                "port": 22,
                "host_key": host_public_key.strip(),
            }
            for index, row in enumerate(rows)
        ]
    )
    return {
        "nodes": nodes,
        "ssh_private_key": pulumi.Output.secret(ssh_private_key),
        "meta": pulumi.Output.from_input(
            {
                "provider": "aws",
                "pool": spec.pool,
                "region": spec.region,
                "nodes": spec.nodes,
                "instance_type": spec.instance_type,
                "market": spec.market,
                "ephemeral": spec.ephemeral,
                "owner": spec.owner,
                "created": spec.created,
                "ttl": spec.ttl,
                "hourly_price": spec.hourly_price,
            }
        ),
    }


def _instance_profile(
    spec: AwsStackSpec, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> aws.iam.InstanceProfile:
    """A role the nodes assume, allowed exactly the volumes' S3 access."""
    assume = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = aws.iam.Role(
        "nodes-role",
        name_prefix=f"skyward-{spec.pool}-"[:38],
        assume_role_policy=json.dumps(assume),
        tags=tags,
        opts=opts,
    )
    aws.iam.RolePolicy(
        "volumes",
        role=role.id,
        policy=json.dumps(s3_policy(spec.volumes)),
        opts=opts,
    )
    return aws.iam.InstanceProfile(
        "nodes-profile",
        name_prefix=f"skyward-{spec.pool}-"[:38],
        role=role.name,
        tags=tags,
        opts=opts,
    )


def program_from_config(
    spec: dict[str, Any], config: pulumi.Config
) -> dict[str, pulumi.Output[Any]]:
    """The program, with its spec and keys read from the stack's config."""
    return program(
        AwsStackSpec.model_validate(spec),
        ssh_public_key=config.require("sshPublicKey"),
        ssh_private_key=config.require_secret("sshPrivateKey"),
        host_public_key=config.require("hostPublicKey"),
        host_private_key=config.require_secret("hostPrivateKey"),
    )
