"""`rag bench`: retrieval and generators scored on a benchmark set, with a resumable output folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import (
    DEFAULT_BEIR_SPLIT,
    DEFAULT_BENCH_KS,
    DEFAULT_BENCH_PASSAGES,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_SAMPLE_SEED,
)
from ..errors import RagError
from .options import (
    CHUNK_TOKENS,
    OVERLAP,
    LazyChoice,
    backend_option,
    dtype_option,
    embedder_option,
    generators_option,
    max_new_tokens_option,
    quiet_option,
    ray_config,
    ray_options,
    retriever_options,
    twin_options,
)
from .output import show_progress, shown, warn

if TYPE_CHECKING:
    from ..retrieve import Retriever


def _dataset_formats() -> tuple[str, ...]:
    from ..bench.datasets import FORMATS  # pure Python, but nothing `rag --help` needs

    return FORMATS


def _int_list(value: str, option: str) -> list[int]:
    """A -k value such as "1,3,5" as [1, 3, 5], or a one-line error naming the option."""
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise RagError(f"{option} takes comma-separated whole numbers, like 1,3,5; got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise RagError(f"{option} takes numbers of at least 1, like 1,3,5; got {value!r}")
    return numbers


@click.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@generators_option(
    "Comma-separated generators: presets, Hub ids or model folders (default: one of each family available here)."
)
@click.option(
    "-k",
    "ks",
    default=",".join(map(str, DEFAULT_BENCH_KS)),
    show_default=True,
    help="Comma-separated cut-offs for recall@k.",
)
@click.option(
    "--passages",
    default=DEFAULT_BENCH_PASSAGES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Top retrieved passages (chunks) offered to each generator; its budget may cut some.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="A fixed random sample of N questions.")
@click.option(
    "--sample-seed", type=int, default=DEFAULT_SAMPLE_SEED, show_default=True, help="Seed of the --limit sample."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder (default: bench-out/<dataset>-<timestamp>); an existing one is resumed.",
)
@click.option("--oracle", is_flag=True, help="Give each generator the gold document instead of retrieved passages.")
@click.option("--retrieval-only", is_flag=True, help="Score retrieval only; load no generator.")
@click.option(
    "--format", "fmt", type=LazyChoice(_dataset_formats), default=None, help="Dataset format (default: detected)."
)
@click.option("--split", default=DEFAULT_BEIR_SPLIT, show_default=True, help="BEIR qrels split.")
@max_new_tokens_option("Answer length cap.")
@dtype_option
@twin_options
@click.option(
    "--index-cache",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Index folder for the corpus (default: a cache folder keyed by corpus, embedder and chunking).",
)
@embedder_option("sentence-transformers model name or folder (default: all-MiniLM-L6-v2).")
@backend_option("What runs the embedder for the corpus index (default: onnx where available).")
@click.option("--chunk-tokens", default=DEFAULT_CHUNK_TOKENS, show_default=True, type=CHUNK_TOKENS)
@click.option("--overlap", default=DEFAULT_CHUNK_OVERLAP, show_default=True, type=OVERLAP)
@retriever_options
@ray_options("Answer on Ray actors, one loaded answerer each; results are written here")
@quiet_option("No progress bars or status lines.")
def bench(
    dataset: Path,
    names: str | None,
    ks: str,
    passages: int,
    limit: int | None,
    sample_seed: int,
    out: Path | None,
    oracle: bool,
    retrieval_only: bool,
    fmt: str | None,
    split: str,
    max_new_tokens: int,
    extractive: bool,
    fid: bool,
    index_cache: Path | None,
    embedder: str | None,
    backend: str | None,
    chunk_tokens: int,
    overlap: int,
    retriever: Retriever,
    use_ray: bool,
    ray_address: str | None,
    ray_workers: int,
    quiet: bool,
) -> None:
    """Benchmark retrieval and generators on DATASET (qa.jsonl, SQuAD v1.1 JSON or a BEIR folder)."""
    import shlex

    from ..bench.report import text_table
    from ..bench.runner import BenchConfig, run_bench

    config = BenchConfig(
        dataset=dataset,
        generators=[n.strip() for n in names.split(",") if n.strip()] if names else None,
        ks=_int_list(ks, "-k"),
        passages=passages,
        limit=limit,
        sample_seed=sample_seed,
        out=out,
        oracle=oracle,
        retrieval_only=retrieval_only,
        format=fmt,
        split=split,
        index_cache=index_cache,
        embedder=embedder,
        backend=backend,
        chunk_tokens=chunk_tokens,
        overlap=overlap,
        max_new_tokens=max_new_tokens,
        extractive=extractive,
        fid=fid,
        progress=show_progress(quiet),
        retriever=retriever,
        command=shlex.join(["rag", *sys.argv[1:]]),
        echo=(lambda m: None) if quiet else (lambda m: click.echo(shown(m), err=True)),
        warn=(lambda m: None) if quiet else warn,
        ray=ray_config(use_ray, ray_address, ray_workers),
    )
    if names is not None and not config.generators:
        raise RagError("--generators is empty: name at least one generator, or use --retrieval-only")
    try:
        run = run_bench(config)
    except KeyboardInterrupt:
        if config.out is not None:
            click.echo(f"interrupted: run the same command with --out {config.out} to resume", err=True)
        raise
    click.echo(text_table(run.summary))
    click.echo(f"\nWrote {', '.join(p.name for p in run.files)} in {run.out}")
    if run.nothing_answered:
        raise RagError(
            f"no question was answered: none of the answerers could run ({', '.join(run.errors)}: "
            "each one's reason is under the table above)"
        )
