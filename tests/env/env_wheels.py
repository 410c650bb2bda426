"""Build tiny pure-Python wheels in a test, so installs need no index."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from pathlib import Path


def _digest(data: bytes) -> str:
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _write(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: skyward-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{p},{_digest(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for inside, data in files.items():
            archive.writestr(inside, data)
    return path


def build_wheel(folder: Path, name: str, version: str, source: str) -> Path:
    """Write ``name-version-py3-none-any.whl`` holding one module, ``name``."""
    module = name.replace("-", "_")
    return _write(folder, name, version, {f"{module}/__init__.py": source.encode()})


def wheel_of_installed(folder: Path, name: str) -> Path:
    """Re-pack an installed pure-Python distribution (cloudpickle) as a wheel."""
    dist = importlib.metadata.distribution(name)
    files = {
        str(f): f.locate().read_bytes()
        for f in dist.files or []
        if ".dist-info" not in str(f) and f.suffix == ".py"
    }
    return _write(folder, name, dist.version, files)
