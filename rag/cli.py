"""The `rag` command: a thin layer that parses options, calls the library and prints."""
from __future__ import annotations

import functools
import json
import math
import shutil
import sys
from pathlib import Path

import click

from .config import (
    DEFAULT_BATCH_SIZE, DEFAULT_BM25_WEIGHT, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, DEFAULT_POOL, DEFAULT_RRF_K,
    INDEX_TYPES, default_index_dir,
)
from .errors import RagError, require_utf8



def _path(what: str):
    """A click callback: the value as a Path, refusing an empty string (which Path would read as '.')."""

    def convert(ctx, param, value):
        if value is None:
            return None
        if not value.strip():
            raise RagError(f"the {what} is empty: give a path")
        return Path(value)

    return convert


def _index_option(f):
    return click.option(
        "--index", "index_dir", default=None, callback=_path("--index path"),
        help="Index folder (default: $RAG_INDEX, else .rag/ here).",
    )(f)


def _retriever_options(command):
    """--retriever, --pool, --rrf-k, --bm25-weight and --mmr, gathered into one `retriever` argument
    (a `rag.retrieve.Retriever`, whose checks turn bad values into one-line errors)."""

    @functools.wraps(command)
    def f(*args, retriever, pool, rrf_k, bm25_weight, mmr, **kwargs):
        from .retrieve import Retriever

        how = Retriever(kind=retriever, pool=pool, rrf_k=rrf_k, bm25_weight=bm25_weight, mmr=mmr)
        return command(*args, retriever=how, **kwargs)

    f = click.option("--mmr", type=float, default=None, metavar="LAMBDA",
                     help="Re-rank by maximal marginal relevance (1: relevance only, 0: novelty only), e.g. 0.7.")(f)
    f = click.option("--bm25-weight", type=float, default=DEFAULT_BM25_WEIGHT, show_default=True,
                     help="Weight of the BM25 ranking in hybrid fusion (the dense ranking weighs 1).")(f)
    f = click.option("--rrf-k", type=float, default=DEFAULT_RRF_K, show_default=True,
                     help="Reciprocal rank fusion constant of --retriever hybrid.")(f)
    f = click.option("--pool", type=int, default=DEFAULT_POOL, show_default=True,
                     help="Candidates taken from each ranking for hybrid fusion (fixed: a larger -k only extends the list) and MMR.")(f)
    f = click.option("--retriever", type=click.Choice(["dense", "bm25", "hybrid"]), default="dense", show_default=True,
                     help="Dense (embedder + FAISS), BM25, or both fused by reciprocal rank fusion.")(f)
    return f


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def shown(text: str, newlines: bool = False) -> str:
    """Text safe to print on a terminal: control and format characters (an ANSI escape in a file
    name, a newline inside a citation, a right-to-left override) appear escaped, as \\x1b or
    \\n; with `newlines`, line breaks and tabs stay as they are. JSON output needs none of this."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c in "\n\t") else repr(c)[1:-1] for c in text)


def _warn(message: str) -> None:
    click.secho(f"warning: {shown(message)}", fg="yellow", err=True)


class RagGroup(click.Group):
    """Turns library errors into one line on stderr and exit status 1, without a stack trace."""

    def invoke(self, ctx):
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


@main.command()
@click.argument("folder", callback=_path("folder"))
@_index_option
@click.option("--embedder", default=None, help="sentence-transformers model name or folder (default: the index's, else all-MiniLM-L6-v2, packaged).")
@click.option("--chunk-tokens", default=None, type=click.IntRange(min=8),
              help=f"Chunk size in embedder tokens (default: the index's, else {DEFAULT_CHUNK_TOKENS}).")
@click.option("--overlap", default=None, type=click.IntRange(min=0),
              help=f"Tokens shared by consecutive chunks (default: the index's, else {DEFAULT_CHUNK_OVERLAP}).")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default=None,
              help="FAISS index: exact flat, HNSW graph, or compressed IVF-PQ (default: the index's, else flat).")
@click.option("--backend", type=click.Choice(["torch", "onnx", "onnx-fp32"]), default=None,
              help="What runs the embedder: torch, ONNX Runtime with int8 weights (onnx), or ONNX fp32 "
                   "(default: the index's, else onnx).")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1))
@click.option("--rehash", is_flag=True, help="Read and hash every file, even those whose size and mtime are unchanged.")
@click.option("--rebuild", is_flag=True,
              help="Read and chunk every document again and write the index anew (a new generation: searches keep "
                   "the current one until it commits; stored vectors are reused). Allows another --embedder or FOLDER.")
@click.option("--follow-symlinks", is_flag=True, help="Index what symbolic links point at (files and folders; loops are skipped).")
@click.option("--max-file-mb", default=200.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Skip files larger than this, with a warning.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or warnings.")
def index(folder: Path, index_dir: Path | None, embedder, chunk_tokens, overlap, index_type, backend, batch_size, rehash,
          rebuild, follow_symlinks, max_file_mb, as_json, quiet) -> None:
    """Index (or update the index of) the documents under FOLDER."""
    from .build import BuildOptions, build_folder

    if not math.isfinite(max_file_mb):
        raise RagError(f"--max-file-mb must be a finite number, got {max_file_mb}")
    index_dir = index_dir if index_dir is not None else default_index_dir()
    options = BuildOptions(
        embedder=embedder, chunk_tokens=chunk_tokens, overlap=overlap, index_type=index_type, backend=backend,
        batch_size=batch_size,
        rehash=rehash, rebuild=rebuild, follow_symlinks=follow_symlinks, max_file_mb=max_file_mb,
        progress=_show_progress(quiet), warn=(lambda m: None) if quiet else _warn,
        notify=(lambda m: None) if quiet else (lambda m: click.echo(shown(m), err=True)),
    )
    report = build_folder(folder, index_dir, options)
    if as_json:
        click.echo(json.dumps({"folder": str(folder), "index": str(index_dir), **report.to_dict()}, indent=2))
    else:
        click.echo(shown(f"Indexed {folder} into {index_dir}: {report.summary()}"))


@main.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, type=int, help="How many passages.")
@_index_option
@click.option("--embedder", default=None, help="Must match the index's embedder (default: the one in its manifest).")
@_retriever_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON with whole passages.")
def search(query: str, k: int, index_dir: Path | None, embedder, retriever, as_json: bool) -> None:
    """Print the passages that best match QUERY."""
    from .index import Index

    if not query.strip():
        raise RagError("the query is empty: give some text to search for")
    require_utf8(query, "query")
    if k < 1:
        raise RagError(f"-k must be at least 1, got {k}")
    index = Index.load(index_dir, embedder=embedder)
    passages = index.search(query, k, retriever=retriever)
    if as_json:
        click.echo(json.dumps({"query": query, "k": k, "retriever": retriever.to_dict(),
                               "passages": [p.to_dict() for p in passages]}, indent=2))
        return
    width = shutil.get_terminal_size((100, 20)).columns
    shorten = sys.stdout.isatty()
    for p in passages:
        click.echo(click.style(f"{p.rank:>2}. {_score(p.score)}  {shown(p.citation)}", bold=True))
        text = " ".join(p.text.split())
        if shorten and len(text) > 3 * (width - 6):
            text = text[: 3 * (width - 6) - 1].rstrip() + "…"
        click.echo(_indent(shown(text), width))
    if not passages:
        click.echo("(the index is empty)" if len(index) == 0 else
                   "(no passage shares a word with the query, so BM25 finds nothing: try --retriever dense or hybrid)")


def _score(score: float) -> str:
    """Three decimals, or three significant digits for a score too large to print that way."""
    return f"{score:.3f}" if abs(score) < 1e6 else f"{score:.3g}"


def _indent(text: str, width: int) -> str:
    import textwrap

    return textwrap.fill(text, width=max(40, width - 2), initial_indent="    ", subsequent_indent="    ")


@main.command()
@_index_option
@click.option("--check", is_flag=True, help="Also verify every file's checksum and every stored row (reads it all).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(index_dir: Path | None, check: bool, as_json: bool) -> None:
    """Print an index's manifest and counts, after checking them."""
    from .index import Index

    index = Index.load(index_dir)  # checks counts and sizes; a damaged index is one line and exit 1
    index.check_bm25()  # and the BM25 arrays
    problems = index.verify() if check else []
    m = index.manifest
    if as_json:
        click.echo(json.dumps({**m.to_dict(), "path": str(index.path), "problems": problems if check else None}, indent=2))
    else:
        bm25 = m.bm25
        rows = [
            ("index", f"{index.path} (generation {m.generation})"),
            ("source", m.source),
            ("documents", m.counts["documents"]),
            ("chunks", m.counts["chunks"]),
            ("embedder", f"{m.embedder} ({m.dimension} dims, normalised, {m.metric}), built with {m.backend}; "
                         f"queries use {getattr(index.embedder, 'backend', 'torch')}"),
            ("index type", f"{m.index_type} {m.index_params or ''}".strip()),
            ("chunking", f"{m.chunking['tokens']} tokens, overlap {m.chunking['overlap']}"),
            ("bm25", f"{bm25.get('method')} k1={bm25.get('k1')} b={bm25.get('b')}, {bm25.get('tokenizer')}, "
                     f"{m.counts['terms']} terms"),
            ("format", f"{m.format} {m.format_version}"),
            ("size on disk", f"{index.size_on_disk() / 1e6:.1f} MB"),
            ("created", m.created),
            ("updated", m.updated),
            ("checked", "every checksum and row: healthy" if check and not problems else
             "DAMAGED" if problems else "file sizes and counts (`rag info --check` verifies checksums)"),
        ]
        for key, value in rows:
            click.echo(f"{key + ':':<14}{shown(str(value))}")
    index.close()
    if problems:
        for problem in problems:
            click.secho(f"damaged: {shown(problem)}", fg="red", err=True)
        from .store import META

        if any(p.startswith(META) for p in problems):  # stored rows: only reading the documents again repairs them
            raise RagError(f"index {index.path} is damaged: rebuild it with `rag index FOLDER --index {index.path} --rebuild`")
        raise RagError(f"index {index.path} is damaged: run `rag index FOLDER --index {index.path}` to write its files "
                       "again from the stored vectors (nothing is embedded)")


# -- answering ------------------------------------------------------------------------------------


def _dtype_option(f):
    """--dtype: what generators compute in. Checked at once (one line for a bad value), then the
    dtype of every generator this process loads (`rag.cpu.prefer`)."""

    def remember(ctx, param, value):
        from .cpu import prefer

        if value is not None:
            prefer(value)  # a bad value is one line
        return value

    return click.option("--dtype", default=None, callback=remember, expose_value=False, metavar="auto|float32|bfloat16",
                        help="What generators compute in (default: $RAG_DTYPE, else auto: bfloat16 where this CPU "
                             "computes it natively, float32 elsewhere; see `rag models`).")(f)


def _generation_options(f):
    f = _dtype_option(f)
    f = click.option("--seed", type=int, default=None, help="Seed for sampling (with --temperature).")(f)
    f = click.option("--temperature", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
                     help="0 is greedy and deterministic; above 0 samples.")(f)
    f = click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Room kept for the answer.")(f)
    f = click.option("-k", "k", default=5, show_default=True, type=int, help="Passages to retrieve.")(f)
    return f


def _settings(max_new_tokens: int, temperature: float, seed: int | None, extractive: bool = False, fid: bool = False):
    from .pipeline import GenerationSettings

    return GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, extractive=extractive,
                              fid=fid)


def _twin_options(f):
    """--extractive and --fid on commands that run several generators: each adds every generator's
    twin in that mode beside it (`pipeline.with_modes`)."""
    f = click.option("--fid", is_flag=True,
                     help="Also run each encoder-decoder generator with Fusion-in-Decoder, side by side.")(f)
    f = click.option("--extractive", is_flag=True,
                     help="Also run each generator in extractive mode (answers copied from the passages), side by side.")(f)
    return f


EXTRACTIVE_HELP = "Constrain the answer to a span copied from the passages (cited by the passage that holds it)."
FID_HELP = ("Encoder-decoder only: Fusion-in-Decoder, each passage encoded with the question on its own "
            "(no shared 512-token cut); the decoder reads them all.")


def _check_question(question: str, k: int) -> None:
    from .errors import require_utf8

    if not question.strip():
        raise RagError("the question is empty: ask something")
    require_utf8(question, "question")
    if k < 1:
        raise RagError(f"-k must be at least 1, got {k}")


def _load_generator(name: str):
    from .generators import ModelNotAvailable, load_generator

    try:
        return load_generator(name)
    except ModelNotAvailable as e:
        raise RagError(str(e)) from None


@main.command()
@click.argument("question")
@click.option("--generator", "-g", default=None, help="Preset name, Hugging Face id, local folder or .gguf file (default: the best available here).")
@_generation_options
@_retriever_options
@_index_option
@click.option("--extractive", is_flag=True, help=EXTRACTIVE_HELP)
@click.option("--fid", is_flag=True, help=FID_HELP)
@click.option("--show-passages", is_flag=True, help="Print the passages given to the generator.")
@click.option("--stream/--no-stream", default=True, help="Print the answer as it is generated (on a terminal).")
@click.option("--verbose", "-v", is_flag=True, help="Print timings and the context budget.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole Answer as JSON.")
def ask(question, generator, k, max_new_tokens, temperature, seed, retriever, index_dir, extractive, fid,
        show_passages, stream, verbose, as_json) -> None:
    """Answer QUESTION from the indexed documents, citing its sources."""
    from .generators import BudgetError, default_generator_name
    from .generators.base import ENCODER_ONLY
    from .index import Index
    from .pipeline import MODES, Pipeline, settings_for

    _check_question(question, k)
    settings = _settings(max_new_tokens, temperature, seed, extractive, fid)
    index = Index.load(index_dir)
    name, settings = settings_for(generator or default_generator_name(), settings)  # "name+extractive" works too
    extractive = settings.extractive
    gen = _load_generator(name)
    if not as_json:
        mode = "".join(f", {m}" for m in MODES if getattr(settings, m))
        runtime = " ".join(filter(None, (getattr(gen, "runtime", ""), getattr(gen, "dtype", ""))))
        role = "reader" if gen.family == ENCODER_ONLY else "generator"
        click.secho(shown(f"{role}: {gen.name} ({gen.family}{mode}; {runtime or 'runtime unknown'})"), err=True, dim=True)
    # An extractive answer is cut from the passage's own characters after decoding: printed whole.
    streaming = stream and not as_json and not extractive and sys.stdout.isatty()
    pipeline = Pipeline(index, gen, k=k, settings=settings, retriever=retriever)
    try:
        answer = pipeline.ask(question, on_text=(lambda t: click.echo(shown(t, newlines=True), nl=False)) if streaming else None)
    except BudgetError as e:
        raise RagError(str(e)) from None
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2))
        return
    if streaming:
        click.echo()
    else:
        click.echo(shown(answer.text, newlines=True))
    if not answer.text:
        click.secho("(the generator gave an empty answer)", err=True, fg="yellow")
    click.echo("\nSources:")
    holder = answer.span.passage if answer.span is not None else None
    for n, passage in enumerate(answer.passages, start=1):
        mark = "  <- the answer is copied from here" if n - 1 == holder else ""
        click.echo(f"  [{n}] {shown(passage.citation)}{mark}")
        if show_passages:
            click.echo(_indent(shown(" ".join(passage.text.split())), shutil.get_terminal_size((100, 20)).columns))
    if verbose:
        _print_timings(answer)


def _print_timings(answer) -> None:
    t = answer.timings
    if answer.found is not None:  # a reader: it read, it did not generate
        click.echo(f"\nretrieval {t.get('retrieval_ms', 0):.0f} ms, reading {t.get('read_ms', 0):.0f} ms "
                   f"({answer.prompt_tokens} tokens in question + passage windows); span score above no-answer: "
                   f"{answer.score if answer.score is not None else '-'}")
        for c in answer.candidates:
            click.echo(f"  {c['score']:8.3f}  {shown(c['citation'])}: {shown(c['text'])}")
        return
    click.echo(
        f"\nretrieval {t.get('retrieval_ms', 0):.0f} ms, generation {t.get('generation_ms', 0):.0f} ms, "
        f"{t.get('tokens_per_s', 0):.1f} tokens/s, prompt {answer.prompt_tokens} tokens, "
        f"answer {answer.output_tokens} tokens, passages cut or dropped: {answer.passages_cut}"
    )
    if answer.dtype_reason:
        click.echo(f"  {answer.dtype} ({shown(answer.dtype_reason)})")
    if answer.fid:
        click.echo("  Fusion-in-Decoder: each passage was encoded with the question on its own")
    for item in answer.budget:
        click.echo(f"  #{item.rank} {shown(item.citation)}: {item.status} ({item.tokens} tokens)")


@main.command()
@click.argument("question")
@click.option("--generators", "-g", "names", default=None,
              help="Comma-separated generators (default: one of each family available here).")
@_generation_options
@_retriever_options
@_index_option
@_twin_options
@click.option("--json", "as_json", is_flag=True, help="Print every answer as JSON.")
@click.option("--html", "html_file", default=None, callback=_path("--html path"),
              help="Also write the answers side by side, passages and highlights included, as one HTML page.")
def compare(question, names, k, max_new_tokens, temperature, seed, retriever, index_dir, extractive, fid, as_json,
            html_file) -> None:
    """Give the same retrieved passages to several generators and compare their answers.

    A name may end in modes: smollm2+extractive, flan-t5-small+fid, flan-t5-small+fid+extractive.
    """
    from .index import Index
    from .pipeline import compare as run_compare
    from .pipeline import default_comparison, with_modes

    _check_question(question, k)
    if html_file is not None:
        from .bench.html import check_page_target

        check_page_target(html_file)  # before any model loads: a wrong path fails at once
    settings = _settings(max_new_tokens, temperature, seed)
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names is not None else default_comparison()
    if names is not None and not chosen:
        raise RagError(f"--generators {names!r} names no generator: give a comma-separated list, like smollm2,flan-t5-small")
    if not chosen:
        raise RagError("no generator is available here: see `rag models`")
    chosen = with_modes(chosen, extractive, fid)
    index = Index.load(index_dir)
    passages, retrieval_ms, results = run_compare(
        index, question, chosen, k=k, settings=settings, retriever=retriever
    )
    if html_file is not None:
        from .bench.html import render_compare, write_page
        from .bench.system import machine

        write_page(html_file, render_compare(question, passages, results, retriever.describe(), machine()))
        click.echo(f"Wrote {shown(str(html_file))}", err=True)
    if as_json:
        click.echo(json.dumps({
            "question": question,
            "retriever": retriever.to_dict(),
            "retrieval_ms": retrieval_ms,
            "passages": [p.to_dict() for p in passages],
            "results": [
                {"generator": r.name, "error": r.error, "load_ms": r.load_ms,
                 "answer": r.answer.to_dict() if r.answer else None}
                for r in results
            ],
        }, indent=2))
        return
    click.echo(f"Question: {shown(question)}")
    click.echo(f"Retrieved {len(passages)} passages ({retriever.describe()}) in {retrieval_ms:.0f} ms: "
               + ", ".join(f"[{p.rank}] {shown(p.citation)}" for p in passages))
    click.echo(_comparison_table(results))
    for r in results:
        if r.error:
            click.secho(shown(f"{r.name}: {r.error}"), fg="yellow", err=True)


def _comparison_table(results) -> str:
    width = shutil.get_terminal_size((120, 20)).columns
    header = ("generator", "family", "answer", "source", "latency", "prompt tok", "cut")
    rows = []
    for r in results:
        if r.answer is None:
            rows.append((shown(r.name), "-", "(not available)", "-", "-", "-", "-"))
            continue
        a = r.answer
        source = f"[{a.span.passage + 1}]" if a.span is not None else "-"
        rows.append((shown(r.name), a.family, shown(" ".join(a.text.split())) or "(empty)", source,
                     f"{a.timings.get('generation_ms', 0):.0f} ms", str(a.prompt_tokens), str(a.passages_cut)))
    fixed = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    answer_width = max(20, width - sum(w for i, w in enumerate(fixed) if i != 2) - 3 * (len(header) - 1))
    fixed[2] = min(fixed[2], answer_width)

    def line(cells) -> str:
        cells = [c if len(c) <= fixed[i] else c[: fixed[i] - 1] + "…" for i, c in enumerate(cells)]
        return " | ".join(c.ljust(fixed[i]) if i < len(cells) - 1 else c for i, c in enumerate(cells))

    return "\n".join([line(header), "-+-".join("-" * w for w in fixed), *(line(row) for row in rows)])


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx) -> None:
    """List generator presets: family, source, size, and whether each is available here."""
    if ctx.invoked_subcommand is not None:
        return
    from .generators import list_models

    from .cpu import choose_dtype, this_cpu

    infos = list_models()
    choice = choose_dtype()
    rows = [("name", "family", "size", "weights fp32 / bf16", "available", "licence", "runtime", "source")]
    rows += [(m.name, m.family, m.size, m.memory, "yes" if m.available else "no", m.licence, m.runtime, m.source)
             for m in infos]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    click.echo(f"\nThis CPU: {this_cpu().describe()}: generators compute in {choice.dtype} "
               f"({choice.reason}); --dtype or $RAG_DTYPE chooses.")
    missing = [m for m in infos if not m.available]
    if missing:
        click.echo(f"\nNot available offline: {', '.join(m.name for m in missing)}.")
        for m in missing:
            click.echo(f"  {m.name}: {m.note.rsplit('; ', 1)[-1]}")


@models.command()
@click.argument("name")
def pull(name: str) -> None:
    """Make a generator available offline: download Hub weights (needs the network) or convert a GGUF once."""
    from .generators import ModelNotAvailable, pull_model

    try:
        path = pull_model(name)
    except ModelNotAvailable as e:
        raise RagError(str(e)) from None
    click.echo(f"{name}: ready at {path}")


# -- benchmarking ---------------------------------------------------------------------------------


def _int_list(value: str, option: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise RagError(f"{option} takes comma-separated whole numbers, like 1,3,5; got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise RagError(f"{option} takes numbers of at least 1, like 1,3,5; got {value!r}")
    return numbers


@main.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--generators", "-g", "names", default=None,
              help="Comma-separated generators: presets, Hub ids or model folders (default: one of each family available here).")
@click.option("-k", "ks", default="1,3,5", show_default=True, help="Comma-separated cut-offs for recall@k.")
@click.option("--passages", default=5, show_default=True, type=click.IntRange(min=1),
              help="Top retrieved passages (chunks) offered to each generator; its budget may cut some.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="A fixed random sample of N questions.")
@click.option("--sample-seed", type=int, default=0, show_default=True, help="Seed of the --limit sample.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder (default: bench-out/<dataset>-<timestamp>); an existing one is resumed.")
@click.option("--oracle", is_flag=True, help="Give each generator the gold document instead of retrieved passages.")
@click.option("--retrieval-only", is_flag=True, help="Score retrieval only; load no generator.")
@click.option("--format", "fmt", type=click.Choice(["qa-jsonl", "squad", "beir"]), default=None,
              help="Dataset format (default: detected).")
@click.option("--split", default="test", show_default=True, help="BEIR qrels split.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Answer length cap.")
@_dtype_option
@_twin_options
@click.option("--index-cache", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Index folder for the corpus (default: a cache folder keyed by corpus, embedder and chunking).")
@click.option("--embedder", default=None, help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2).")
@click.option("--backend", type=click.Choice(["torch", "onnx", "onnx-fp32"]), default=None,
              help="What runs the embedder for the corpus index (default: onnx where available).")
@click.option("--chunk-tokens", default=DEFAULT_CHUNK_TOKENS, show_default=True, type=click.IntRange(min=8))
@click.option("--overlap", default=DEFAULT_CHUNK_OVERLAP, show_default=True, type=click.IntRange(min=0))
@_retriever_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or status lines.")
def bench(dataset, names, ks, passages, limit, sample_seed, out, oracle, retrieval_only, fmt, split,
          max_new_tokens, extractive, fid, index_cache, embedder, backend, chunk_tokens, overlap, retriever, quiet) -> None:
    """Benchmark retrieval and generators on DATASET (qa.jsonl, SQuAD v1.1 JSON or a BEIR folder)."""
    import shlex

    from .bench.report import text_table
    from .bench.runner import BenchConfig, run_bench

    config = BenchConfig(
        dataset=dataset, generators=[n.strip() for n in names.split(",") if n.strip()] if names else None,
        ks=_int_list(ks, "-k"), passages=passages, limit=limit, sample_seed=sample_seed, out=out, oracle=oracle,
        retrieval_only=retrieval_only, format=fmt, split=split, index_cache=index_cache, embedder=embedder, backend=backend,
        chunk_tokens=chunk_tokens, overlap=overlap, max_new_tokens=max_new_tokens, extractive=extractive,
        fid=fid, progress=_show_progress(quiet),
        retriever=retriever,
        command=shlex.join(["rag", *sys.argv[1:]]),
        echo=(lambda m: None) if quiet else (lambda m: click.echo(shown(m), err=True)),
        warn=(lambda m: None) if quiet else _warn,
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
        failed = "; ".join(f"{name}: {why}" for name, why in run.errors.items())
        raise RagError(f"no question was answered: none of the answerers could run ({failed})")


# -- architecture cost curves (random weights) ------------------------------------------------------

from .cost import cost_command  # noqa: E402  (click only: torch loads when the command runs)

main.add_command(cost_command, "cost")

from .train.cli import train_command  # noqa: E402  (click only)

main.add_command(train_command, "train")


if __name__ == "__main__":
    main()
