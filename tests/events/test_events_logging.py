"""The library speaks through ``logging`` under ``skyward``, never with print."""

from __future__ import annotations

import ast
from pathlib import Path

import skyward

PACKAGE = Path(skyward.__file__).resolve().parent


def library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_bare_prints_in_the_library() -> None:
    offenders = []
    for path in library_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_every_logger_the_library_logs_to_is_under_skyward() -> None:
    names = []
    for path in library_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # ``log = logging.getLogger(...)``: the loggers modules write to
            # (the library also quietens asyncssh's, which it does not use).
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            call = node.value
            if not (
                isinstance(call.func, ast.Attribute) and call.func.attr == "getLogger"
            ):
                continue
            (arg,) = call.args
            if isinstance(arg, ast.Name) and arg.id == "__name__":
                names.append(
                    path.relative_to(PACKAGE.parent).with_suffix("").as_posix()
                )
            else:
                assert isinstance(arg, ast.Constant), f"{path}:{node.lineno}"
                names.append(arg.value)
    assert "skyward/api/pool" in names
    assert all(n.replace("/", ".").startswith("skyward.") for n in names), names
