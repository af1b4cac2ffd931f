"""`rag index`, `rag search` and `rag info`: building an index, querying it, and checking it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_MAX_FILE_MB,
    INDEX_TYPES,
    default_index_dir,
)
from ..errors import RagError, require_utf8
from .options import (
    CHUNK_TOKENS,
    OVERLAP,
    backend_option,
    embedder_option,
    index_option,
    json_option,
    k_option,
    path,
    quiet_option,
    ray_config,
    ray_options,
    retriever_options,
)
from .output import indent, score, show_progress, shown, terminal_width, warn

if TYPE_CHECKING:
    from ..retrieve import Retriever


@click.command()
@click.argument("folder", callback=path("folder"))
@index_option
@embedder_option("sentence-transformers model name or folder (default: the index's, else all-MiniLM-L6-v2, packaged).")
@click.option(
    "--chunk-tokens",
    default=None,
    type=CHUNK_TOKENS,
    help=f"Chunk size in embedder tokens (default: the index's, else {DEFAULT_CHUNK_TOKENS}).",
)
@click.option(
    "--overlap",
    default=None,
    type=OVERLAP,
    help=f"Tokens shared by consecutive chunks (default: the index's, else {DEFAULT_CHUNK_OVERLAP}).",
)
@click.option(
    "--index-type",
    type=click.Choice(INDEX_TYPES),
    default=None,
    help="FAISS index: exact flat, HNSW graph, or compressed IVF-PQ (default: the index's, else flat).",
)
@backend_option(
    "What runs the embedder: torch, ONNX Runtime with int8 weights (onnx), or ONNX fp32 "
    "(default: the index's, else onnx)."
)
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1))
@click.option("--rehash", is_flag=True, help="Read and hash every file, even those whose size and mtime are unchanged.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Read and chunk every document again and write the index anew (a new generation: searches keep "
    "the current one until it commits; stored vectors are reused). Allows another --embedder or FOLDER.",
)
@click.option(
    "--follow-symlinks", is_flag=True, help="Index what symbolic links point at (files and folders; loops are skipped)."
)
@click.option(
    "--max-file-mb",
    default=DEFAULT_MAX_FILE_MB,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Skip files larger than this, with a warning.",
)
@ray_options("Plan and embed on a Ray cluster; this process stays the one writer")
@click.option(
    "--ray-ship",
    is_flag=True,
    help="Read the files here and send their bytes to the workers (FOLDER is on this machine's disk only).",
)
@json_option("Print the build report as JSON.")
@quiet_option("No progress bars or warnings.")
def index(
    folder: Path,
    index_dir: Path | None,
    embedder: str | None,
    chunk_tokens: int | None,
    overlap: int | None,
    index_type: str | None,
    backend: str | None,
    batch_size: int,
    rehash: bool,
    rebuild: bool,
    follow_symlinks: bool,
    max_file_mb: float,
    use_ray: bool,
    ray_address: str | None,
    ray_workers: int,
    ray_ship: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Index (or update the index of) the documents under FOLDER."""
    from ..build import BuildOptions, build_folder

    ray = ray_config(use_ray, ray_address, ray_workers, ray_ship)

    if not math.isfinite(max_file_mb):
        raise RagError(f"--max-file-mb must be a finite number, got {max_file_mb}")
    index_dir = index_dir if index_dir is not None else default_index_dir()
    options = BuildOptions(
        embedder=embedder,
        chunk_tokens=chunk_tokens,
        overlap=overlap,
        index_type=index_type,
        backend=backend,
        batch_size=batch_size,
        rehash=rehash,
        rebuild=rebuild,
        follow_symlinks=follow_symlinks,
        max_file_mb=max_file_mb,
        progress=show_progress(quiet),
        warn=(lambda m: None) if quiet else warn,
        notify=(lambda m: None) if quiet else (lambda m: click.echo(shown(m), err=True)),
        ray=ray,
    )
    report = build_folder(folder, index_dir, options)
    if as_json:
        click.echo(json.dumps({"folder": str(folder), "index": str(index_dir), **report.to_dict()}, indent=2))
    else:
        click.echo(shown(f"Indexed {folder} into {index_dir}: {report.summary()}"))


@click.command()
@click.argument("query")
@k_option("How many passages.")
@index_option
@embedder_option("Must match the index's embedder (default: the one in its manifest).")
@retriever_options
@json_option("Print JSON with whole passages.")
def search(
    query: str, k: int, index_dir: Path | None, embedder: str | None, retriever: Retriever, as_json: bool
) -> None:
    """Print the passages that best match QUERY."""
    from ..index import Index

    if not query.strip():
        raise RagError("the query is empty: give some text to search for")
    require_utf8(query, "query")
    if k < 1:
        raise RagError(f"-k must be at least 1, got {k}")
    index = Index.load(index_dir, embedder=embedder)
    passages = index.search(query, k, retriever=retriever)
    if as_json:
        click.echo(
            json.dumps(
                {"query": query, "k": k, "retriever": retriever.to_dict(), "passages": [p.to_dict() for p in passages]},
                indent=2,
            )
        )
        return
    width = terminal_width()
    shorten = sys.stdout.isatty()
    for p in passages:
        label = f"{score(p.score)} {retriever.kind}"
        if p.reranker is not None:
            label += f", {score(p.rerank_score)} {p.reranker}"
        click.echo(click.style(f"{p.rank:>2}. {label}  {shown(p.citation)}", bold=True))
        text = " ".join(p.text.split())
        if shorten and len(text) > 3 * (width - 6):
            text = text[: 3 * (width - 6) - 1].rstrip() + "…"
        click.echo(indent(shown(text), width))
    if not passages:
        click.echo(
            "(the index is empty)"
            if len(index) == 0
            else "(no passage shares a word with the query, so BM25 finds nothing: try --retriever dense or hybrid)"
        )


@click.command()
@index_option
@click.option("--check", is_flag=True, help="Also verify every file's checksum and every stored row (reads it all).")
@json_option("Print the manifest as JSON.")
def info(index_dir: Path | None, check: bool, as_json: bool) -> None:
    """Print an index's manifest and counts, after checking them."""
    from ..index import Index

    index = Index.load(index_dir)  # checks counts and sizes; a damaged index is one line and exit 1
    index.check_bm25()  # and the BM25 arrays
    problems = index.verify() if check else []
    m = index.manifest
    if as_json:
        click.echo(
            json.dumps({**m.to_dict(), "path": str(index.path), "problems": problems if check else None}, indent=2)
        )
    else:
        bm25 = m.bm25
        rows = [
            ("index", f"{index.path} (generation {m.generation})"),
            ("source", m.source),
            ("documents", m.counts["documents"]),
            ("chunks", m.counts["chunks"]),
            (
                "embedder",
                f"{m.embedder} ({m.dimension} dims, normalised, {m.metric}), built with {m.backend}; "
                f"queries use {getattr(index.embedder, 'backend', 'torch')}",
            ),
            ("index type", f"{m.index_type} {m.index_params or ''}".strip()),
            ("chunking", f"{m.chunking['tokens']} tokens, overlap {m.chunking['overlap']}"),
            (
                "bm25",
                f"{bm25.get('method')} k1={bm25.get('k1')} b={bm25.get('b')}, {bm25.get('tokenizer')}, "
                f"{m.counts['terms']} terms",
            ),
            ("format", f"{m.format} {m.format_version}"),
            ("size on disk", f"{index.size_on_disk() / 1e6:.1f} MB"),
            ("created", m.created),
            ("updated", m.updated),
            (
                "checked",
                "every checksum and row: healthy"
                if check and not problems
                else "DAMAGED"
                if problems
                else "file sizes and counts (`rag info --check` verifies checksums)",
            ),
        ]
        for key, value in rows:
            click.echo(f"{key + ':':<14}{shown(str(value))}")
    index.close()
    if problems:
        for problem in problems:
            click.secho(f"damaged: {shown(problem)}", fg="red", err=True)
        from ..store import META

        if any(p.startswith(META) for p in problems):  # stored rows: only reading the documents again repairs them
            raise RagError(
                f"index {index.path} is damaged: rebuild it with `rag index FOLDER --index {index.path} --rebuild`"
            )
        raise RagError(
            f"index {index.path} is damaged: run `rag index FOLDER --index {index.path}` to write its files "
            "again from the stored vectors (nothing is embedded)"
        )
