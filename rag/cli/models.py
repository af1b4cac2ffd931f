"""`rag models` and `rag models pull`: which generators this machine can run, and fetching them."""

from __future__ import annotations

import textwrap

import click

from ..errors import RagError

WIDTH = 100  # `rag models` fits a 100-column terminal; --verbose adds each model's details below


def _say(text: str, indent: str = "") -> None:
    """One message wrapped at WIDTH (long notes, package lists), continued under its indent."""
    click.echo(
        textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "    ", break_on_hyphens=False)
    )


@click.group(invoke_without_command=True)
@click.option("--verbose", "-v", is_flag=True, help="Also each model's licence, memory, source and notes.")
@click.pass_context
def models(ctx: click.Context, verbose: bool) -> None:
    """List the answerers (readers and generator presets): family, size, and whether each runs here."""
    if ctx.invoked_subcommand is not None:
        return
    from ..answerers import list_answerers
    from ..cpu import choose_dtype, this_cpu

    infos = list_answerers()
    choice = choose_dtype()
    rows = [("name", "family", "size", "available", "runtime")]
    rows += [(m.name, m.family, m.size, "yes" if m.available else "no", m.runtime) for m in infos]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
        click.echo(line if len(line) <= WIDTH else line[: WIDTH - 1] + "…")
    if any(m.runtime == "llama.cpp, not installed" for m in infos):
        from ..generators.runtime import INSTALL

        _say(f"($RAG_RUNTIME=llama.cpp asks for llama.cpp, which is not installed: {INSTALL})")
    if verbose:
        for m in infos:
            click.echo("")
            _say(f"{m.name}: {m.family}, {m.size} parameters, licence {m.licence}")
            _say(f"weights: {m.memory}" + (" (fp32 / bf16)" if "/" in m.memory else ""), "  ")
            _say(f"source: {m.source}", "  ")
            _say(f"note: {m.note}", "  ")
    click.echo("")
    _say(
        f"This CPU: {this_cpu().describe()}: generators compute in {choice.dtype} "
        f"({choice.reason}); --dtype or $RAG_DTYPE chooses."
    )
    from ..generators.runtime import LLAMA_CPP_MEASURED, runtime_for

    for name in LLAMA_CPP_MEASURED:  # what llama.cpp measured, where this CPU is like the one measured
        try:
            runtime = runtime_for(name, choice)
        except RagError:  # $RAG_RUNTIME=llama.cpp without the extra: the table's runtime column says so
            continue
        if runtime.reason.startswith("auto: "):
            _say(f"{name}: {runtime.reason.removeprefix('auto: ')}.", "  ")
    from ..rerankers.loading import default_reranker, list_rerankers

    click.echo("")
    _say("Rerankers (--reranker NAME on search, ask, compare and bench; any CrossEncoder folder or Hub id too):")
    for name, runtime, note in list_rerankers():
        _say(f"{name}  {runtime}  {note}", "  ")
    click.echo(f"  default: {default_reranker() or 'none'}")
    missing = [m for m in infos if not m.available]
    if missing:
        click.echo("")
        _say(f"Not available offline: {', '.join(m.name for m in missing)}.")
        for m in missing:
            _say(f"{m.name}: {m.note.rsplit('; ', 1)[-1]}", "  ")
    if not verbose:
        click.echo("\n(rag models --verbose: each model's licence, memory, source and notes)")


@models.command()
@click.argument("name")
def pull(name: str) -> None:
    """Make a generator available offline: download Hub weights (needs the network) or convert a GGUF once."""
    from ..generators import ModelNotAvailable, pull_model

    try:
        path = pull_model(name)
    except ModelNotAvailable as e:
        raise RagError(str(e)) from None
    click.echo(f"{name}: ready at {path}")
