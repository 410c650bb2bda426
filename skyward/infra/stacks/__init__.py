"""Pulumi programs, one per cloud, each run from a pool spec kept in stack config.

The engine hands :func:`program_from_config` to the Automation API as the
inline program, and ``Pulumi.yaml`` at the repository root runs the same
function through ``__main__.py``: both read the resolved spec and the keys
from the stack's config (namespace ``skyward``), so ``pulumi preview --stack
NAME`` audits exactly what a pool runs.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pulumi

NAMESPACE = "skyward"

# Config keys, as the Automation API spells them (namespace:key).
SPEC = f"{NAMESPACE}:spec"
POOL = f"{NAMESPACE}:poolSpec"
SSH_PUBLIC_KEY = f"{NAMESPACE}:sshPublicKey"
SSH_PRIVATE_KEY = f"{NAMESPACE}:sshPrivateKey"
HOST_PUBLIC_KEY = f"{NAMESPACE}:hostPublicKey"
HOST_PRIVATE_KEY = f"{NAMESPACE}:hostPrivateKey"
SECRET_KEYS = frozenset({SSH_PRIVATE_KEY, HOST_PRIVATE_KEY})


def program_from_config() -> None:
    """Run the program of the provider named in the stack's ``skyward:spec``."""
    config = pulumi.Config(NAMESPACE)
    spec: dict[str, Any] = json.loads(config.require("spec"))
    kind = spec.get("kind")
    try:
        module = importlib.import_module(f"skyward.infra.stacks.{kind}")
    except ImportError:
        raise ValueError(
            f"Stack config names provider {kind!r}, which has no Skyward stack "
            "program in this version."
        ) from None
    outputs = module.program_from_config(spec, config)
    for name, value in outputs.items():
        pulumi.export(name, value)
