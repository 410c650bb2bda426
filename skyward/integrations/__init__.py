"""Skyward with the libraries people already use, imported only when asked for.

- ``JoblibPool``, ``ScikitLearnPool``: a pool as joblib's parallel backend.
- ``torch``, ``keras``, ``jax``, ``transformers``: decorators that prepare a
  distributed environment inside a task; they run on nodes, so they live in
  ``skyward.runtime.integrations``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "JoblibPool": "skyward.integrations.joblib",
    "ScikitLearnPool": "skyward.integrations.joblib",
    "torch": "skyward.runtime.integrations",
    "keras": "skyward.runtime.integrations",
    "jax": "skyward.runtime.integrations",
    "transformers": "skyward.runtime.integrations",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skyward.integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
