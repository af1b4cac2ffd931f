"""The `rag` command: a thin layer that parses options, calls the library and prints.

One module per command group (`index`, `ask`, `models`, `bench`; `cost` and `train` live beside
their libraries), shared options in `options` and printing in `output`. Importing this package
imports click and the commands' declarations only: torch, transformers and FAISS load when a
command runs, so `rag --help` stays instant.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..cost import cost_command  # click only: torch loads when the command runs
from ..errors import RagError
from ..train.cli import train_command  # click only
from . import ask, bench, index, models
from .output import shown

__all__ = ["RagGroup", "main"]


class RagGroup(click.Group):
    """Turns library errors into one line on stderr and exit status 1, without a stack trace."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RagError as e:
            raise click.ClickException(shown(str(e))) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=RagGroup)
@click.version_option(package_name="rag")
def main() -> None:
    """Retrieval-augmented generation over a folder of documents, offline and measurable."""


main.add_command(index.index)
main.add_command(index.search)
main.add_command(index.info)
main.add_command(ask.ask)
main.add_command(ask.compare)
main.add_command(models.models)
main.add_command(bench.bench)
main.add_command(cost_command, "cost")  # architecture cost curves (random weights)
main.add_command(train_command, "train")
