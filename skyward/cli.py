"""The ``skyward`` command line."""

from __future__ import annotations

import typer

import skyward
from skyward.infra.commands import register as register_stack_commands

app = typer.Typer(
    name="skyward",
    help="Run Python functions on ephemeral compute pools, and manage their stacks.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keep ``skyward`` a group of subcommands even while it has few."""


@app.command()
def version() -> None:
    """Print Skyward's version."""
    typer.echo(skyward.__version__)


register_stack_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
