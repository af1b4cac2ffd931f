"""The `rag cost` command: parses options, calls `run_cost`, prints where the results are.

Registered in rag/cli/__init__.py with `main.add_command(cost_command, "cost")`; it imports nothing heavy,
so `rag --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rag.cost.archs import ARCHS
from rag.cost.feeds import MODES
from rag.cost.run import DEFAULT_KS, CostSettings, default_out, run_cost
from rag.errors import RagError


def _names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise RagError(f"{option} is empty: give a comma-separated list")
    return names


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(text, option))
    except ValueError:
        raise RagError(f"{option} must be whole numbers separated by commas, got {text!r}") from None


@click.command("cost")
@click.option(
    "--archs",
    default=",".join(ARCHS),
    show_default=True,
    help="Comma-separated preset names, or config .json files (hyper-parameters only).",
)
@click.option("--ks", default=",".join(map(str, DEFAULT_KS)), show_default=True, help="Numbers of passages.")
@click.option(
    "--modes",
    default=",".join(MODES),
    show_default=True,
    help="concat (every family, cut at its window) and/or fid (Fusion-in-Decoder, encoder-decoders only).",
)
@click.option(
    "--repeats",
    default=3,
    show_default=True,
    type=int,
    help="Interleaved runs per configuration; medians are reported.",
)
@click.option("--new-tokens", default=16, show_default=True, type=int, help="Tokens every model is made to generate.")
@click.option("--threads", default=2, show_default=True, type=int, help="torch threads, the same for every model.")
@click.option("--passage-tokens", default=200, show_default=True, type=int, help="Tokens per passage.")
@click.option(
    "--question-tokens", default=20, show_default=True, type=int, help="Tokens of the question (and template)."
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder for the results: new, empty, or one `rag cost` made (default: cost-out/<time>).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def cost_command(
    archs: str,
    ks: str,
    modes: str,
    repeats: int,
    new_tokens: int,
    threads: int,
    passage_tokens: int,
    question_tokens: int,
    out: Path | None,
    quiet: bool,
) -> None:
    """Time and memory of each generator architecture against the number of passages, with RANDOM
    weights (cost only, not quality): concatenated, Fusion-in-Decoder, and decoder-only inputs."""
    settings = CostSettings(
        archs=_names(archs, "--archs"),
        ks=_ints(ks, "--ks"),
        modes=_names(modes, "--modes"),
        repeats=repeats,
        new_tokens=new_tokens,
        threads=threads,
        passage_tokens=passage_tokens,
        question_tokens=question_tokens,
    )
    out = out if out is not None else default_out()
    result = run_cost(
        out,
        settings,
        progress=not quiet and sys.stderr.isatty(),
        notify=None if quiet else (lambda m: click.echo(m, err=True)),
    )
    click.echo(
        f"Wrote {', '.join(p.name for p in result.files)} to {result.out} (random weights: cost only, not quality)"
    )
