"""``sky.Verda()``: Verda (formerly DataCrunch) GPU cloud.

This version lists what Verda offers (``available_instances()``) from its
REST API; pools on Verda come in a later version, and asking for one says
so. Credentials are an OAuth client id and secret from Verda's console,
passed in or read from ``VERDA_CLIENT_ID`` and ``VERDA_CLIENT_SECRET``
(``DATACRUNCH_CLIENT_ID`` / ``DATACRUNCH_CLIENT_SECRET`` also work).
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import Field

from skyward.errors import ConfigurationError, MissingCredentialsError
from skyward.infra.base import Emit, PoolOptions, Provider, Provisioner
from skyward.infra.http import request_json
from skyward.spec import InstanceSpec, PoolSpec
from skyward.spec.accelerators import gpu_model_for

API_URL = "https://api.verda.com/v1"
POOLS_AVAILABLE_ON = "sky.Local() and sky.AWS()"


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


class Verda(Provider):
    """Verda's GPU cloud. ``api_url`` defaults to ``$VERDA_API_URL`` or Verda's."""

    kind = "verda"

    client_id: str | None = Field(default=None, exclude=True, repr=False)
    client_secret: str | None = Field(default=None, exclude=True, repr=False)
    api_url: str = Field(
        default_factory=lambda: os.environ.get("VERDA_API_URL", API_URL)
    )
    currency: str = "usd"

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> Provisioner:
        raise ConfigurationError(
            "Pools on Verda are not available in this version of Skyward; pools run "
            f"on {POOLS_AVAILABLE_ON}. sky.Verda().available_instances() lists what "
            "Verda offers."
        )

    def credentials(self) -> tuple[str, str]:
        client_id = self.client_id or _env("VERDA_CLIENT_ID", "DATACRUNCH_CLIENT_ID")
        secret = self.client_secret or _env(
            "VERDA_CLIENT_SECRET", "DATACRUNCH_CLIENT_SECRET"
        )
        if not client_id or not secret:
            raise MissingCredentialsError(
                "No Verda credentials: set VERDA_CLIENT_ID and VERDA_CLIENT_SECRET "
                "(an API client from Verda's console, Keys > Cloud API credentials), "
                "or pass sky.Verda(client_id=..., client_secret=...)."
            )
        return client_id, secret

    def token(self) -> str:
        """An access token from the client credentials (OAuth2)."""
        client_id, secret = self.credentials()
        answer = request_json(
            "Verda",
            "POST",
            f"{self.api_url}/oauth2/token",
            body={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        if not isinstance(answer, dict) or "access_token" not in answer:
            raise ConfigurationError(
                f"Verda's token endpoint answered without an access token: {answer!r}"
            )
        return str(answer["access_token"])

    def available_instances(self) -> list[InstanceSpec]:
        """Verda's instance types with prices, and where each is available now."""
        token = self.token()
        types = request_json(
            "Verda",
            "GET",
            f"{self.api_url}/instance-types",
            token=token,
            query={"currency": self.currency},
        )
        availability = request_json(
            "Verda", "GET", f"{self.api_url}/instance-availability", token=token
        )
        where: dict[str, list[str]] = {}
        for entry in availability or []:
            for name in entry.get("availabilities", []):
                where.setdefault(name, []).append(entry.get("location_code", ""))
        return [
            verda_instance(item, ",".join(where.get(item["instance_type"], [])))
            for item in types or []
        ]


def _price(value: Any) -> float | None:
    """Verda sends prices as numbers or strings."""
    if value is None or value == "":
        return None
    return float(value)


def verda_instance(item: dict[str, Any], region: str) -> InstanceSpec:
    """One entry of ``GET /instance-types`` as an InstanceSpec."""
    gpu = item.get("gpu") or {}
    count = int(gpu.get("number_of_gpus") or 0)
    total = float((item.get("gpu_memory") or {}).get("size_in_gigabytes") or 0)
    per_gpu = total / count if count else 0.0
    accelerator = None
    if count:
        # "8x H100 SXM5 80GB" -> "H100 SXM5 80GB"
        description = re.sub(r"^\s*\d+\s*x\s*", "", gpu.get("description", ""))
        model = gpu_model_for(description, per_gpu)
        accelerator = model.name if model else description or None
    return InstanceSpec(
        name=item["instance_type"],
        vcpus=int((item.get("cpu") or {}).get("number_of_cores") or 0),
        memory_gb=float((item.get("memory") or {}).get("size_in_gigabytes") or 0),
        accelerator=accelerator,
        accelerator_count=count,
        accelerator_memory_gb=per_gpu,
        price_on_demand=_price(item.get("price_per_hour")),
        price_spot=_price(item.get("spot_price")),
        region=region,
        provider="verda",
    )
