"""``sky.VastAI()``: Vast.ai's GPU marketplace.

This version searches the marketplace (``available_instances()``) through
Vast.ai's REST API; pools on Vast.ai come in a later version, and asking
for one says so. The API key is passed in, or read from ``VAST_API_KEY``,
or from the file the ``vastai`` CLI writes (``~/.config/vastai/vast_api_key``
or ``~/.vast_api_key``).

``geolocation`` (country codes, ``"US"`` or ``"US,CA"``) and
``min_reliability`` filter offers; ``bid_multiplier`` is how far above an
offer's minimum bid an interruptible instance bids; ``use_overlay`` joins
the nodes of a multi-node pool in an overlay network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field

from skyward.errors import ConfigurationError, MissingCredentialsError
from skyward.infra.base import Emit, PoolOptions, Provider, Provisioner
from skyward.infra.http import request_json
from skyward.infra.providers.verda import POOLS_AVAILABLE_ON
from skyward.spec import InstanceSpec, PoolSpec
from skyward.spec.accelerators import gpu_model_for

API_URL = "https://console.vast.ai"
KEY_FILES = ("~/.config/vastai/vast_api_key", "~/.vast_api_key")
OFFER_LIMIT = 64


class VastAI(Provider):
    """Vast.ai's marketplace. ``api_url`` defaults to ``$VAST_API_URL`` or Vast's."""

    kind = "vastai"

    api_key: str | None = Field(default=None, exclude=True, repr=False)
    geolocation: str | None = None
    min_reliability: float = Field(default=0.95, ge=0, le=1)
    bid_multiplier: float = Field(default=1.0, ge=1)
    use_overlay: bool = True
    api_url: str = Field(
        default_factory=lambda: os.environ.get("VAST_API_URL", API_URL)
    )

    def provisioner(
        self, spec: PoolSpec, pool_name: str, emit: Emit, options: PoolOptions
    ) -> Provisioner:
        raise ConfigurationError(
            "Pools on Vast.ai are not available in this version of Skyward; pools "
            f"run on {POOLS_AVAILABLE_ON}. sky.VastAI().available_instances() "
            "searches Vast.ai's offers."
        )

    def key(self) -> str:
        if self.api_key:
            return self.api_key
        if os.environ.get("VAST_API_KEY"):
            return os.environ["VAST_API_KEY"]
        for name in KEY_FILES:
            path = Path(name).expanduser()
            if path.is_file() and path.read_text().strip():
                return path.read_text().strip()
        raise MissingCredentialsError(
            "No Vast.ai API key: set VAST_API_KEY (from "
            "https://cloud.vast.ai/account/), run `vastai set api-key KEY` (it "
            f"writes {KEY_FILES[0]}), or pass sky.VastAI(api_key=...)."
        )

    def offer_query(self, accelerator: str | None = None) -> dict[str, Any]:
        """The ``POST /api/v0/bundles/`` body for this provider's filters."""
        query: dict[str, Any] = {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "reliability": {"gte": self.min_reliability},
            "type": "on-demand",
            "order": [["dph_total", "asc"]],
            "limit": OFFER_LIMIT,
        }
        if self.geolocation:
            codes = [c.strip().upper() for c in self.geolocation.split(",")]
            query["geolocation"] = {"in": [c for c in codes if c]}
        if accelerator:
            query["gpu_name"] = {"eq": accelerator}
        return query

    def available_instances(self) -> list[InstanceSpec]:
        """The cheapest matching offers, one InstanceSpec each."""
        answer = request_json(
            "Vast.ai",
            "POST",
            f"{self.api_url}/api/v0/bundles/",
            token=self.key(),
            body=self.offer_query(),
        )
        offers = answer.get("offers", []) if isinstance(answer, dict) else []
        return [vast_instance(offer) for offer in offers]


def vast_instance(offer: dict[str, Any]) -> InstanceSpec:
    """One marketplace offer as an InstanceSpec.

    ``price_spot`` is the offer's minimum bid for an interruptible instance.
    """
    count = int(offer.get("num_gpus") or 0)
    gpu_gb = float(offer.get("gpu_ram") or 0) / 1024
    name = str(offer.get("gpu_name") or "")
    model = gpu_model_for(name, gpu_gb) if name else None
    min_bid = offer.get("min_bid")
    return InstanceSpec(
        name=f"{count}x {name} (offer {offer['id']})" if count else str(offer["id"]),
        vcpus=int(float(offer.get("cpu_cores") or 0)),
        memory_gb=round(float(offer.get("cpu_ram") or 0) / 1024, 1),
        accelerator=(model.name if model else name) if count else None,
        accelerator_count=count,
        accelerator_memory_gb=round(gpu_gb, 1),
        price_on_demand=float(offer["dph_total"]) if "dph_total" in offer else None,
        price_spot=float(min_bid) if min_bid is not None else None,
        region=str(offer.get("geolocation") or ""),
        provider="vastai",
    )
