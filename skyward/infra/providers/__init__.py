"""User-facing provider configurations and what they provision with."""

from __future__ import annotations

import importlib
import os

from skyward.errors import ConfigurationError
from skyward.infra.base import Provider
from skyward.infra.providers.local import Local
from skyward.infra.providers.vastai import VastAI
from skyward.infra.providers.verda import Verda

# name -> (module, class); cloud providers are imported only when chosen.
PROVIDERS: dict[str, tuple[str, str]] = {
    "local": ("skyward.infra.providers.local", "Local"),
    "aws": ("skyward.infra.providers.aws", "AWS"),
    "verda": ("skyward.infra.providers.verda", "Verda"),
    "vastai": ("skyward.infra.providers.vastai", "VastAI"),
}


def provider_by_name(name: str) -> Provider:
    """``"local"`` -> ``Local()``, ``"aws"`` -> ``AWS()``, and so on."""
    key = name.strip().lower()
    if key not in PROVIDERS:
        raise ConfigurationError(
            f"Unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}."
        )
    module, cls = PROVIDERS[key]
    try:
        provider_cls = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"The {name!r} provider is not available in this version of Skyward."
        ) from exc
    provider: Provider = provider_cls()
    return provider


def provider_from_env(default: str = "local") -> Provider:
    """The provider named by ``SKYWARD_PROVIDER`` (``default`` when unset).

    Lets one script run on this machine or on a cloud without edits:
    ``SKYWARD_PROVIDER=aws python examples/1_hello.py``.
    """
    return provider_by_name(os.environ.get("SKYWARD_PROVIDER") or default)


__all__ = [
    "PROVIDERS",
    "Local",
    "VastAI",
    "Verda",
    "provider_by_name",
    "provider_from_env",
]
