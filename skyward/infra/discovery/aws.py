"""What EC2 offers in a region, with spot prices, from the EC2 API.

Three EC2 calls, each paginated:

    describe_instance_type_offerings  which types the region offers
    describe_instance_types           vCPUs, memory, GPUs of each type
    describe_spot_price_history       the current spot price per type and zone

On-demand prices come from Skyward's table of AWS's published us-east-1
list prices (``skyward.spec.accelerators.AWS_INSTANCE_TYPES``); EC2 itself
does not serve them, and the Price List API needs its own permission and
returns gigabytes for a full region. Types outside the table, and every
type in other regions, report ``price_on_demand=None`` rather than a
borrowed number.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions

from skyward.errors import MissingCredentialsError, ProviderAPIError
from skyward.spec import InstanceSpec
from skyward.spec.accelerators import AWS_INSTANCE_TYPES, gpu_model_for

log = logging.getLogger(__name__)

PRICE_REGION = "us-east-1"
_PRICES = {t.name: t.on_demand_price for t in AWS_INSTANCE_TYPES}


def aws_available_instances(
    region: str = "us-east-1",
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> list[InstanceSpec]:
    """Every instance type ``region`` offers, sorted by name.

    ``endpoint_url`` points the EC2 client elsewhere (a test server).
    Raises MissingCredentialsError without AWS credentials and
    ProviderAPIError when EC2 refuses or cannot be reached.
    """
    session = session or boto3.Session()
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint_url)
    try:
        offered = _offered(ec2, region)
        types = _types(ec2, offered)
        spot = _spot_prices(ec2)
    except botocore.exceptions.NoCredentialsError:
        raise MissingCredentialsError(
            "No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or run `aws configure`."
        ) from None
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise ProviderAPIError(
            "AWS",
            f"EC2 refused {exc.operation_name} in {region}: "
            f"{error.get('Code', '?')}: {error.get('Message', exc)}",
            status=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise ProviderAPIError(
            "AWS", f"Could not reach EC2 in {region}: {exc}"
        ) from None
    log.info("EC2 offers %d instance types in %s", len(types), region)
    return sorted(
        (aws_instance(item, region, spot.get(item["InstanceType"])) for item in types),
        key=lambda spec: spec.name,
    )


def _offered(ec2: Any, region: str) -> set[str]:
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="region", Filters=[{"Name": "location", "Values": [region]}]
    )
    return {
        offer["InstanceType"]
        for page in pages
        for offer in page.get("InstanceTypeOfferings", [])
    }


def _types(ec2: Any, offered: set[str]) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("describe_instance_types").paginate()
    return [
        item
        for page in pages
        for item in page.get("InstanceTypes", [])
        if item["InstanceType"] in offered
    ]


def _spot_prices(ec2: Any) -> dict[str, float]:
    """The lowest current Linux spot price of each type across the zones."""
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=datetime.now(UTC),
    )
    prices: dict[str, float] = {}
    for page in pages:
        for entry in page.get("SpotPriceHistory", []):
            name, price = entry["InstanceType"], float(entry["SpotPrice"])
            prices[name] = min(price, prices.get(name, price))
    return prices


def aws_instance(item: dict[str, Any], region: str, spot: float | None) -> InstanceSpec:
    """One ``describe_instance_types`` entry as an InstanceSpec."""
    gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
    accelerator, count, memory_gb = None, 0, 0.0
    if gpus:
        gpu = gpus[0]
        memory_gb = round(gpu.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024, 1)
        model = gpu_model_for(gpu.get("Name", ""), memory_gb)
        accelerator = model.name if model else gpu.get("Name")
        count = sum(int(g.get("Count", 0)) for g in gpus)
    name = item["InstanceType"]
    return InstanceSpec(
        name=name,
        vcpus=int(item.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
        memory_gb=round(item.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024, 1),
        accelerator=accelerator,
        accelerator_count=count,
        accelerator_memory_gb=memory_gb,
        price_on_demand=_PRICES.get(name) if region == PRICE_REGION else None,
        price_spot=spot,
        region=region,
        provider="aws",
    )
