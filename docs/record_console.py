"""Record the live console of a real Local pool as an SVG for the README.

    PYTHONPATH=. python3 docs/record_console.py docs/live-console.svg

Runs a 2-node pool with 2 slots per node, takes a snapshot of the view
while tasks are running (after the nodes have reported their use), and
saves what the terminal showed at that moment: the tasks' prints above
the live panel.
"""

from __future__ import annotations

import io
import sys
import threading
import time

from rich.console import Console
from rich.text import Text

import skyward as sky
from skyward.console import LiveConsole

WIDTH = 92


@sky.compute
def train(shard: int) -> float:
    import time

    node = sky.instance_info().node
    loss = 1.0
    for epoch in range(3):
        busy_until = time.monotonic() + 0.4
        while time.monotonic() < busy_until:
            loss *= 0.999999
        print(f"shard {shard} epoch {epoch} loss {loss:.4f} on node {node}")
    return loss


def main(path: str) -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=WIDTH)
    view = LiveConsole(console=screen)
    lines: list[Text] = []
    sampled = threading.Event()

    def watch(event: sky.SkywardEvent) -> None:
        match event:
            case sky.LogLine(node=node, line=line):
                lines.append(Text(f"[node {node}] ", style="dim") + Text(line))
            case sky.Metrics():
                sampled.set()

    with sky.ComputePool(
        nodes=2,
        concurrency=2,
        console=False,
        on_event=sky.callback.compose(view, watch),
        metrics_interval=0.5,
    ) as pool:
        view.pool = pool
        futures = [pool.submit(train, i) for i in range(12)]
        sampled.wait(10)
        while sum(f.done() for f in futures) < 5:
            time.sleep(0.05)
        snapshot = Console(record=True, width=WIDTH, file=io.StringIO())
        for line in lines[-8:]:
            snapshot.print(line)
        snapshot.print(view.render())
        for f in futures:
            f.result()
    sys.stdout.write(snapshot.export_text(clear=False) + "\n")
    snapshot.save_svg(path, title="skyward: live console")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/live-console.svg")
