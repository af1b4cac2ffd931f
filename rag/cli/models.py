"""`rag models` and `rag models pull`: which generators this machine can run, and fetching them."""

from __future__ import annotations

import click

from ..errors import RagError


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """List generator presets: family, source, size, and whether each is available here."""
    if ctx.invoked_subcommand is not None:
        return
    from ..answerers import list_answerers
    from ..cpu import choose_dtype, this_cpu

    infos = list_answerers()
    choice = choose_dtype()
    rows = [("name", "family", "size", "weights fp32 / bf16", "available", "licence", "runtime", "source")]
    rows += [
        (m.name, m.family, m.size, m.memory, "yes" if m.available else "no", m.licence, m.runtime, m.source)
        for m in infos
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    click.echo(
        f"\nThis CPU: {this_cpu().describe()}: generators compute in {choice.dtype} "
        f"({choice.reason}); --dtype or $RAG_DTYPE chooses."
    )
    from ..generators.runtime import LLAMA_CPP_MEASURED, runtime_for

    for name in LLAMA_CPP_MEASURED:  # what llama.cpp measured, where this CPU is like the one measured
        try:
            runtime = runtime_for(name, choice)
        except RagError:  # $RAG_RUNTIME=llama.cpp without the extra: the table's runtime column says so
            continue
        if runtime.reason.startswith("auto: "):
            click.echo(f"  {name}: {runtime.reason.removeprefix('auto: ')}.")
    from ..rerankers.loading import default_reranker, list_rerankers

    click.echo(
        "\nRerankers (--reranker NAME on search, ask, compare and bench; any CrossEncoder folder or Hub id too):"
    )
    for name, runtime, note in list_rerankers():
        click.echo(f"  {name}  {runtime}  {note}")
    click.echo(f"  default: {default_reranker() or 'none'}")
    missing = [m for m in infos if not m.available]
    if missing:
        click.echo(f"\nNot available offline: {', '.join(m.name for m in missing)}.")
        for m in missing:
            click.echo(f"  {m.name}: {m.note.rsplit('; ', 1)[-1]}")


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
