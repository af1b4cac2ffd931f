"""The `rag` command: a thin layer that parses options, calls the library and prints."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from .config import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, INDEX_TYPES, default_index_dir
from .errors import RagError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _index_option(f):
    return click.option(
        "--index", "index_dir", type=click.Path(path_type=Path), default=None,
        help="Index folder (default: $RAG_INDEX, else .rag/ here).",
    )(f)


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


class RagGroup(click.Group):
    """Turns library errors into one line on stderr and exit status 1, without a stack trace."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RagError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=RagGroup)
@click.version_option(package_name="rag")
def main() -> None:
    """Retrieval-augmented generation over a folder of documents, offline and measurable."""


@main.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@_index_option
@click.option("--embedder", default=None, help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2, packaged).")
@click.option("--chunk-tokens", default=DEFAULT_CHUNK_TOKENS, show_default=True, type=click.IntRange(min=8), help="Chunk size in embedder tokens.")
@click.option("--overlap", default=DEFAULT_CHUNK_OVERLAP, show_default=True, type=click.IntRange(min=0), help="Tokens shared by consecutive chunks.")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default="flat", show_default=True, help="FAISS index: exact flat, HNSW graph, or compressed IVF-PQ.")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1))
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or warnings.")
def index(folder: Path, index_dir: Path | None, embedder, chunk_tokens, overlap, index_type, batch_size, quiet) -> None:
    """Index (or update the index of) the documents under FOLDER."""
    from .embedder import Embedder
    from .index import Index

    if not folder.exists():
        raise RagError(f"folder {folder} does not exist: give the folder of documents to index")
    index_dir = index_dir or default_index_dir()
    built = Index.build(
        folder, index_dir, embedder=Embedder(embedder, batch_size=batch_size), chunk_tokens=chunk_tokens,
        overlap=overlap, index_type=index_type, progress=_show_progress(quiet),
        warn=(lambda m: None) if quiet else _warn,
    )
    click.echo(f"Indexed {folder} into {index_dir}: {built.build_report.summary()}")


@main.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, type=int, help="How many passages.")
@_index_option
@click.option("--embedder", default=None, help="Must match the index's embedder (default: the one in its manifest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with whole passages.")
def search(query: str, k: int, index_dir: Path | None, embedder, as_json: bool) -> None:
    """Print the passages most similar to QUERY."""
    from .index import Index

    if not query.strip():
        raise RagError("the query is empty: give some text to search for")
    if k < 1:
        raise RagError(f"-k must be at least 1, got {k}")
    passages = Index.load(index_dir, embedder=embedder).search(query, k)
    if as_json:
        click.echo(json.dumps({"query": query, "k": k, "passages": [p.to_dict() for p in passages]}, indent=2))
        return
    width = shutil.get_terminal_size((100, 20)).columns
    shorten = sys.stdout.isatty()
    for p in passages:
        click.echo(click.style(f"{p.rank:>2}. {p.score:.3f}  {p.citation}", bold=True))
        text = " ".join(p.text.split())
        if shorten and len(text) > 3 * (width - 6):
            text = text[: 3 * (width - 6) - 1].rstrip() + "…"
        click.echo(_indent(text, width))
    if not passages:
        click.echo("(the index is empty)")


def _indent(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, width=max(40, width - 2), initial_indent="    ", subsequent_indent="    ")


@main.command()
@_index_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(index_dir: Path | None, as_json: bool) -> None:
    """Print an index's manifest and counts."""
    from . import store
    from .errors import IndexError_

    index_dir = index_dir or default_index_dir()
    folder = store.find_index(index_dir)
    if folder is None:
        raise IndexError_(f"no index at {index_dir}: build one with `rag index FOLDER --index {index_dir}`")
    manifest = store.read_manifest(folder)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    rows = [
        ("index", str(folder)),
        ("source", manifest.get("source", "?")),
        ("documents", manifest["counts"]["documents"]),
        ("chunks", manifest["counts"]["chunks"]),
        ("embedder", f"{manifest['embedder']} ({manifest['dimension']} dims, normalised, {manifest['metric']})"),
        ("index type", f"{manifest['index_type']} {manifest.get('index_params') or ''}".strip()),
        ("chunking", f"{manifest['chunking']['tokens']} tokens, overlap {manifest['chunking']['overlap']}"),
        ("format", manifest["format_version"]),
        ("size on disk", f"{size / 1e6:.1f} MB"),
        ("created", manifest.get("created")),
        ("updated", manifest.get("updated")),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<14}{value}")


if __name__ == "__main__":
    main()
