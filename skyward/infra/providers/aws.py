"""``sky.AWS()``: pools of EC2 instances, each pool a Pulumi stack.

The provider resolves a PoolSpec into an :class:`AwsStackSpec` (instance
type, market, region, SSH sources, keys), checks what can be checked before
anything is created (Pulumi CLI, credentials, region), and hands the stack
to the engine. The program itself is :mod:`skyward.infra.stacks.aws`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import secrets
import urllib.request
from typing import Any

import asyncssh
from pydantic import Field, field_validator

from skyward import events
from skyward.cluster import NodeEndpoint
from skyward.errors import ConfigurationError, ProvisioningError, StackError
from skyward.infra.base import Emit, PoolOptions, Provider, Provisioned
from skyward.infra.engine import Engine, EngineSettings, PoolStack, call_engine
from skyward.infra.plan import Plan, record
from skyward.infra.stacks import (
    HOST_PRIVATE_KEY,
    HOST_PUBLIC_KEY,
    SPEC,
    SSH_PRIVATE_KEY,
    SSH_PUBLIC_KEY,
)
from skyward.infra.stacks import aws as program
from skyward.infra.stacks.aws import AwsStackSpec
from skyward.spec import InstanceSpec, PoolSpec
from skyward.spec.accelerators import AWS_INSTANCE_TYPES, select_aws_instance_type

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
EPHEMERAL_PREFIX = "eph-"
HEAD_PORT = 29500
CHECKIP_URL = "https://checkip.amazonaws.com"
FALLBACK_ALLOCATIONS = ("spot-if-available", "cheapest")


def known_regions() -> list[str]:
    """Every EC2 region botocore knows, across AWS's partitions."""
    import boto3

    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return sorted(regions)


class AWS(Provider):
    """EC2 instances for a pool, declared as a Pulumi stack.

    ``region``: default ``AWS_REGION``/``AWS_DEFAULT_REGION``, else
    us-east-1. ``instance_type`` and ``ami`` override the choices made from
    the pool's accelerator, cpu and memory. ``ssh_cidrs``: who may SSH in
    (default: this machine's public address, /32). ``backend``: where the
    stack's state lives (default ``SKYWARD_BACKEND`` or
    ``file://~/.skyward/state``).
    """

    kind = "aws"

    region: str | None = None
    instance_type: str | None = None
    ami: str | None = None
    ssh_cidrs: tuple[str, ...] | None = None
    ssh_user: str = "ubuntu"
    root_volume_gb: int = Field(default=100, ge=8, le=16384)
    backend: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in known_regions():
            raise ValueError(
                f"unknown AWS region {value!r}; valid regions: "
                f"{', '.join(known_regions())}"
            )
        return value

    @field_validator("ssh_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else list(value)
        if not items:
            raise ValueError(
                "ssh_cidrs must name at least one CIDR, such as 203.0.113.7/32"
            )
        out = []
        for item in items:
            try:
                out.append(str(ipaddress.ip_network(str(item), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not a CIDR block; write one such as 203.0.113.7/32"
                ) from None
        return tuple(out)

    # -- resolving a spec ---------------------------------------------------

    def resolved_region(self) -> str:
        region = (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION
        )
        if region not in known_regions():
            raise ConfigurationError(
                f"Unknown AWS region {region!r} (from the environment); valid "
                f"regions: {', '.join(known_regions())}."
            )
        return region

    def available_instances(self) -> list[InstanceSpec]:
        """The instance types this region offers, with spot prices from EC2."""
        from skyward.infra.discovery.aws import aws_available_instances

        return aws_available_instances(self.resolved_region())

    def resolved_instance_type(self, spec: PoolSpec) -> str:
        if self.instance_type is not None:
            return self.instance_type
        return select_aws_instance_type(spec.accelerator, spec.cpu, spec.memory).name

    def check(self, spec: PoolSpec) -> None:
        """Refuse what AWS cannot serve, before anything is created."""
        self.resolved_instance_type(spec)
        self.resolved_region()
        if spec.name is not None and spec.name.startswith(EPHEMERAL_PREFIX):
            raise ConfigurationError(
                f"Pool name {spec.name!r} starts with {EPHEMERAL_PREFIX!r}, which "
                "marks ephemeral stacks that `skyward gc` collects; choose another."
            )

    def fingerprint(self, spec: PoolSpec) -> dict[str, Any]:
        """What decides a pool's infrastructure; a named pool must match it."""
        provider = self.describe()
        provider.pop("backend", None)
        dumped = spec.model_dump(mode="json")
        fields = ("nodes", "cpu", "memory", "accelerator", "allocation", "volumes")
        return {
            "provider": provider,
            **{key: dumped[key] for key in fields},
            "idle_timeout": spec.idle_timeout,
            "ttl": spec.ttl,
        }

    def stack_spec(
        self,
        spec: PoolSpec,
        pool: str,
        *,
        ssh_cidrs: tuple[str, ...],
        market: str,
        owner: str,
        created: str,
    ) -> AwsStackSpec:
        instance_type = self.resolved_instance_type(spec)
        return AwsStackSpec(
            pool=pool,
            region=self.resolved_region(),
            nodes=spec.nodes,
            instance_type=instance_type,
            accelerator=spec.accelerator.name if spec.accelerator else None,
            ami=self.ami,
            market="spot" if market == "spot" else "on-demand",
            root_volume_gb=self.root_volume_gb,
            ssh_cidrs=ssh_cidrs,
            ssh_user=self.ssh_user,
            volumes=spec.volumes,
            idle_timeout=spec.idle_timeout,
            ttl=spec.ttl,
            ephemeral=spec.name is None,
            owner=owner,
            created=created,
            hourly_price=on_demand_price(instance_type),
        )

    # -- offline plan -------------------------------------------------------

    def plan(self, spec: PoolSpec, pool: str | None = None) -> Plan:
        """What the pool's stack would create, from Pulumi's mocks, no cloud call."""
        self.check(spec)
        name = pool or spec.name or "ephemeral-pool"
        market = initial_market(spec.allocation)
        aws_spec = self.stack_spec(
            spec,
            name,
            ssh_cidrs=self.ssh_cidrs or ("<this machine's public IP>/32",),
            market=market,
            owner="<your AWS identity>",
            created=_now(),
        )
        ssh, host = new_key_pair(), new_key_pair()

        def lookup(token: str, args: Any) -> dict[str, Any]:
            owners, pattern = program.ami_filters(aws_spec.accelerator)
            return {"id": f"<newest AMI named {pattern!r} by {owners[0]}>"}

        plan = record(
            lambda: program.program(aws_spec, ssh[1], ssh[0], host[1], host[0]),
            stack=name,
            lookup=lookup,
        )
        price = aws_spec.hourly_price
        if price is None:
            plan.price_note = f"no list price known for {aws_spec.instance_type}"
        else:
            plan.hourly_price = price * spec.nodes
            kind = (
                "spot, at most the on-demand price" if market == "spot" else "on-demand"
            )
            plan.price_note = (
                f"{spec.nodes} x {aws_spec.instance_type} at ${price:.4f}/h "
                f"({kind}; us-east-1 list price)"
            )
        return plan

    # -- provisioning -------------------------------------------------------

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> AwsProvisioner:
        return AwsProvisioner(self, spec, pool_name, emit, options)


def initial_market(allocation: str) -> str:
    return "on-demand" if allocation == "on-demand" else "spot"


def on_demand_price(instance_type: str) -> float | None:
    for known in AWS_INSTANCE_TYPES:
        if known.name == instance_type:
            return known.on_demand_price
    return None


def new_key_pair() -> tuple[str, str]:
    """A fresh ed25519 key: (OpenSSH private key text, public key line)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment="skyward")
    return (
        key.export_private_key().decode(),
        key.export_public_key().decode().strip(),
    )


def ephemeral_stack_name(pool_name: str) -> str:
    return f"{EPHEMERAL_PREFIX}{pool_name}-{secrets.token_hex(3)}"[:63]


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def caller_cidr() -> str:
    """This machine's public address as a /32 (or /128), asked of AWS's checkip."""
    url = os.environ.get("SKYWARD_CHECKIP_URL", CHECKIP_URL)
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode().strip()
        address = ipaddress.ip_address(text)
    except (OSError, ValueError) as exc:
        raise ProvisioningError(
            f"Could not learn this machine's public IP address from {url} ({exc}), "
            "which the pool's SSH rule needs. Pass it yourself: "
            "sky.AWS(ssh_cidrs=['203.0.113.7/32'])."
        ) from exc
    return str(ipaddress.ip_network(address))


def check_credentials(region: str) -> str:
    """The caller's identity ARN; a clear error when AWS cannot be reached as it.

    Also confirms the region is enabled for the account.
    """
    import boto3
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    # A fresh session: boto3's default one keeps the credentials it found first.
    session = boto3.session.Session(region_name=region)
    try:
        identity = session.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise ProvisioningError(
            "No AWS credentials were found. Configure them with `aws configure`, "
            "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; nothing "
            "was created."
        ) from None
    except EndpointConnectionError as exc:
        raise ProvisioningError(
            f"Could not reach AWS to check the credentials: {exc}. Nothing was created."
        ) from exc
    except (ClientError, BotoCoreError) as exc:
        raise ProvisioningError(
            f"AWS refused the credentials: {exc}. Nothing was created."
        ) from exc
    try:
        session.client("ec2").describe_regions(RegionNames=[region])
    except ClientError as exc:
        raise ProvisioningError(
            f"AWS region {region!r} is not available to this account: {exc}. "
            "Nothing was created."
        ) from exc
    return str(identity["Arn"])


class AwsProvisioner:
    """Brings an AWS pool's stack up and takes it down (see :class:`PoolStack`)."""

    def __init__(
        self,
        config: AWS,
        spec: PoolSpec,
        pool_name: str,
        emit: Emit,
        options: PoolOptions,
    ):
        self.config = config
        self.spec = spec
        self.pool_name = pool_name
        self.emit = emit
        self.options = options
        self.stack: PoolStack | None = None
        self.engine: Engine | None = None

    def make_engine(self) -> Engine:
        return Engine(EngineSettings.load(self.config.backend))

    async def provision(self) -> Provisioned:
        engine = self.engine or self.make_engine()
        self.engine = engine
        await asyncio.to_thread(engine.command)
        region = self.config.resolved_region()
        identity = await asyncio.to_thread(check_credentials, region)
        cidrs = self.config.ssh_cidrs or (await asyncio.to_thread(caller_cidr),)

        named = self.spec.name is not None
        name = self.spec.name or ephemeral_stack_name(self.pool_name)
        stack = PoolStack(
            engine, name, named, self.emit, pool=self.pool_name, keep=self.options.keep
        )
        self.stack = stack
        stored = await call_engine(stack.stored_config)
        fingerprint = self.config.fingerprint(self.spec)
        market = initial_market(self.spec.allocation)
        config = self.stack_config(stored, cidrs, identity, market, fingerprint)
        try:
            outputs = await call_engine(
                stack.up, config, fingerprint, self.options.update
            )
        except StackError as exc:
            aws_spec = AwsStackSpec.model_validate_json(config[SPEC])
            if not (
                exc.capacity_refused
                and aws_spec.market == "spot"
                and self.spec.allocation in FALLBACK_ALLOCATIONS
            ):
                raise
            log.warning(
                "Spot capacity for %s was refused in %s; falling back to on-demand",
                aws_spec.instance_type,
                aws_spec.region,
            )
            stored = await call_engine(stack.stored_config)
            config = self.stack_config(
                stored, cidrs, identity, "on-demand", fingerprint
            )
            outputs = await call_engine(stack.up, config, fingerprint, True)
        return self.provisioned(outputs)

    def stack_config(
        self,
        stored: dict[str, str] | None,
        cidrs: tuple[str, ...],
        identity: str,
        market: str,
        fingerprint: dict[str, Any],
    ) -> dict[str, str]:
        """The stack's config; what a stored stack already has is kept.

        Keys, creation time and owner survive an update; a teammate's
        address joins the SSH rule instead of replacing the owner's; a
        spot-to-on-demand fallback sticks while the allocation is unchanged.
        """
        stored = stored or {}
        old = json.loads(stored[SPEC]) if SPEC in stored else {}
        if old:
            old_fp = json.loads(stored.get("skyward:poolSpec", "{}"))
            if old_fp.get("allocation") == fingerprint["allocation"]:
                market = old.get("market", market)
            if self.config.ssh_cidrs is None:
                cidrs = tuple(dict.fromkeys([*old.get("ssh_cidrs", []), *cidrs]))
        aws_spec = self.config.stack_spec(
            self.spec,
            self.spec.name or self.pool_name,
            ssh_cidrs=cidrs,
            market=market,
            owner=old.get("owner") or identity,
            created=old.get("created") or _now(),
        )
        if SSH_PRIVATE_KEY in stored and HOST_PRIVATE_KEY in stored:
            ssh = stored[SSH_PRIVATE_KEY], stored[SSH_PUBLIC_KEY]
            host = stored[HOST_PRIVATE_KEY], stored[HOST_PUBLIC_KEY]
        else:
            ssh, host = new_key_pair(), new_key_pair()
        return {
            SPEC: aws_spec.model_dump_json(),
            SSH_PRIVATE_KEY: ssh[0],
            SSH_PUBLIC_KEY: ssh[1],
            HOST_PRIVATE_KEY: host[0],
            HOST_PUBLIC_KEY: host[1],
        }

    def provisioned(self, outputs: dict[str, Any]) -> Provisioned:
        """Endpoints and prices from the stack's outputs."""
        meta = outputs.get("meta") or {}
        key = outputs["ssh_private_key"]
        price = meta.get("hourly_price") or 0.0
        spot = meta.get("market") == "spot"
        endpoints, instances = [], []
        for row in outputs["nodes"]:
            endpoint = NodeEndpoint(
                node=int(row["node"]),
                host=row["public_ip"],
                port=int(row["port"]),
                user=row["user"],
                host_key=row["host_key"],
                client_key=key,
                private_ip=row["private_ip"],
                instance_id=row["id"],
            )
            info = events.InstanceInfo(
                instance_id=row["id"],
                ip=row["public_ip"],
                node=endpoint.node,
                private_ip=row["private_ip"],
                spot=spot,
                instance_type=meta.get("instance_type", ""),
                hourly_price=price,
            )
            endpoints.append(endpoint)
            instances.append(info)
            self.emit(events.InstanceProvisioned(pool=self.pool_name, instance=info))
        return Provisioned(
            endpoints=endpoints,
            head_port=HEAD_PORT,
            hourly_rate=price * len(endpoints),
            instances=instances,
        )

    async def teardown(self) -> None:
        if self.stack is not None:
            await call_engine(self.stack.teardown)
