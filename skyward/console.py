"""What a person at a terminal sees of a pool by default.

Task output is always shown, each line prefixed by its node, on the stream
the task wrote it to. ``console=False`` on a pool silences it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from skyward.callback import Callback
from skyward.events import LogLine, SkywardEvent

if TYPE_CHECKING:
    from skyward.api.pool import ComputePool


def plain_console(event: SkywardEvent) -> None:
    if isinstance(event, LogLine):
        stream = sys.stderr if event.stream == "stderr" else sys.stdout
        stream.write(f"[node {event.node}] {event.line}\n")
        stream.flush()


def default_console(pool: ComputePool) -> Callback | None:
    if pool.console is False:
        return None
    return plain_console
