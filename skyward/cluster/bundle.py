"""Build the source bundle a node imports as ``skyward``.

A node gets ``skyward/runtime/`` as it is on the client plus a small
``skyward/__init__.py`` that exposes the names tasks use (``instance_info``,
``shard``...), so a function pickled with references to the ``skyward``
module finds what it needs there.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from functools import lru_cache
from pathlib import Path

_NODE_INIT = '''"""Skyward on a node: the part of the API that tasks call."""
from skyward.runtime import *  # noqa: F403
from skyward.runtime import __all__ as _runtime_all

__all__ = list(_runtime_all)


def __getattr__(name):
    import importlib

    if name == "integrations":
        return importlib.import_module("skyward.runtime.integrations")
    raise AttributeError(
        f"skyward.{name} is not available inside a task on a node; only "
        f"{', '.join(__all__)} are"
    )
'''


def _runtime_files() -> list[tuple[str, bytes]]:
    import skyward.runtime

    root = Path(skyward.runtime.__file__).resolve().parent
    files = [("skyward/__init__.py", _NODE_INIT.encode())]
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        files.append((f"skyward/{rel}", path.read_bytes()))
    return files


@lru_cache(maxsize=1)
def bundle() -> tuple[str, bytes]:
    """Return ``(digest, gzipped tar)`` of the node package."""
    files = _runtime_files()
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode() + b"\0" + data + b"\0")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=6) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return digest.hexdigest()[:16], out.getvalue()
