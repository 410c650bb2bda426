"""The decorator keeps signatures and the operators keep result types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_types_flow_through_compute_and_operators():
    sample = Path(__file__).with_name("typing_sample.py")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--no-error-summary",
            "--follow-imports=silent",
            str(sample),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    found = [line.split(": ", 2)[-1] for line in result.stdout.splitlines()]
    assert found == [
        'Revealed type is "skyward.api.compute.PendingCompute[int]"',
        'Revealed type is "int"',
        'Revealed type is "tuple[int, ...]"',
        'Revealed type is "tuple[int, str]"',
        'Revealed type is "tuple[int, ...]"',
        'Argument 1 to "__call__" of "ComputeFunction" has incompatible type '
        '"str"; expected "int"  [arg-type]',
    ]
