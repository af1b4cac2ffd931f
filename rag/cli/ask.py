"""`rag ask` and `rag compare`: answering a question from the index with one generator, or with
several given the same passages."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import RagError, require_utf8
from .options import (
    generation_options,
    generators_option,
    index_option,
    json_option,
    path,
    retriever_options,
    twin_options,
)
from .output import comparison_table, indent, print_timings, shown, terminal_width

if TYPE_CHECKING:
    from ..generators.base import Generator
    from ..pipeline import GenerationSettings
    from ..retrieve import Retriever

EXTRACTIVE_HELP = "Constrain the answer to a span copied from the passages (cited by the passage that holds it)."
FID_HELP = (
    "Encoder-decoder only: Fusion-in-Decoder, each passage encoded with the question on its own "
    "(no shared 512-token cut); the decoder reads them all."
)


def _settings(
    max_new_tokens: int, temperature: float, seed: int | None, extractive: bool = False, fid: bool = False
) -> GenerationSettings:
    from ..pipeline import GenerationSettings

    return GenerationSettings(
        max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, extractive=extractive, fid=fid
    )


def _check_question(question: str, k: int) -> None:
    """Before the index or any model loads: a bad question or -k fails at once."""
    if not question.strip():
        raise RagError("the question is empty: ask something")
    require_utf8(question, "question")
    if k < 1:
        raise RagError(f"-k must be at least 1, got {k}")


def _load_generator(name: str) -> Generator:
    from ..answerers import load_answerer
    from ..answers import ModelNotAvailable

    try:
        return load_answerer(name)
    except ModelNotAvailable as e:
        raise RagError(str(e)) from None


@click.command()
@click.argument("question")
@click.option(
    "--generator",
    "-g",
    default=None,
    help="Preset name, Hugging Face id, local folder or .gguf file (default: the best available here).",
)
@generation_options
@retriever_options
@index_option
@click.option("--extractive", is_flag=True, help=EXTRACTIVE_HELP)
@click.option("--fid", is_flag=True, help=FID_HELP)
@click.option("--show-passages", is_flag=True, help="Print the passages given to the generator.")
@click.option("--stream/--no-stream", default=True, help="Print the answer as it is generated (on a terminal).")
@click.option("--verbose", "-v", is_flag=True, help="Print timings and the context budget.")
@json_option("Print the whole Answer as JSON.")
def ask(
    question: str,
    generator: str | None,
    k: int,
    max_new_tokens: int,
    temperature: float,
    seed: int | None,
    retriever: Retriever,
    index_dir: Path | None,
    extractive: bool,
    fid: bool,
    show_passages: bool,
    stream: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing its sources."""
    from ..answerers import default_answerer_name
    from ..answers import ENCODER_ONLY, BudgetError
    from ..index import Index
    from ..pipeline import MODES, Pipeline, settings_for

    _check_question(question, k)
    settings = _settings(max_new_tokens, temperature, seed, extractive, fid)
    index = Index.load(index_dir)
    name, settings = settings_for(generator or default_answerer_name(), settings)  # "name+extractive" works too
    extractive = settings.extractive
    gen = _load_generator(name)
    if not as_json:
        mode = "".join(f", {m}" for m in MODES if getattr(settings, m))
        runtime = " ".join(filter(None, (getattr(gen, "runtime", ""), getattr(gen, "dtype", ""))))
        role = "reader" if gen.family == ENCODER_ONLY else "generator"
        click.secho(
            shown(f"{role}: {gen.name} ({gen.family}{mode}; {runtime or 'runtime unknown'})"), err=True, dim=True
        )
        click.secho(shown(f"retrieval: {retriever.describe()}"), err=True, dim=True)
    # An extractive answer is cut from the passage's own characters after decoding: printed whole.
    streaming = stream and not as_json and not extractive and sys.stdout.isatty()
    pipeline = Pipeline(index, gen, k=k, settings=settings, retriever=retriever)
    try:
        answer = pipeline.ask(
            question, on_text=(lambda t: click.echo(shown(t, newlines=True), nl=False)) if streaming else None
        )
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
            click.echo(indent(shown(" ".join(passage.text.split())), terminal_width()))
    if verbose:
        print_timings(answer)


@click.command()
@click.argument("question")
@generators_option("Comma-separated generators (default: one of each family available here).")
@generation_options
@retriever_options
@index_option
@twin_options
@json_option("Print every answer as JSON.")
@click.option(
    "--html",
    "html_file",
    default=None,
    callback=path("--html path"),
    help="Also write the answers side by side, passages and highlights included, as one HTML page.",
)
def compare(
    question: str,
    names: str | None,
    k: int,
    max_new_tokens: int,
    temperature: float,
    seed: int | None,
    retriever: Retriever,
    index_dir: Path | None,
    extractive: bool,
    fid: bool,
    as_json: bool,
    html_file: Path | None,
) -> None:
    """Give the same retrieved passages to several generators and compare their answers.

    A name may end in modes: smollm2+extractive, flan-t5-small+fid, flan-t5-small+fid+extractive.
    """
    from ..index import Index
    from ..pipeline import compare as run_compare
    from ..pipeline import default_comparison, with_modes

    _check_question(question, k)
    if html_file is not None:
        from ..bench.html import check_page_target

        check_page_target(html_file)  # before any model loads: a wrong path fails at once
    settings = _settings(max_new_tokens, temperature, seed)
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names is not None else default_comparison()
    if names is not None and not chosen:
        raise RagError(
            f"--generators {names!r} names no generator: give a comma-separated list, like smollm2,flan-t5-small"
        )
    if not chosen:
        raise RagError("no generator is available here: see `rag models`")
    chosen = with_modes(chosen, extractive, fid)
    index = Index.load(index_dir)
    passages, retrieval_ms, results = run_compare(index, question, chosen, k=k, settings=settings, retriever=retriever)
    if html_file is not None:
        from ..bench.html import render_compare, write_page
        from ..bench.system import machine

        write_page(html_file, render_compare(question, passages, results, retriever.describe(), machine()))
        click.echo(f"Wrote {shown(str(html_file))}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "question": question,
                    "retriever": retriever.to_dict(),
                    "retrieval_ms": retrieval_ms,
                    "passages": [p.to_dict() for p in passages],
                    "results": [
                        {
                            "generator": r.name,
                            "error": r.error,
                            "load_ms": r.load_ms,
                            "answer": r.answer.to_dict() if r.answer else None,
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(f"Question: {shown(question)}")
    click.echo(
        f"Retrieved {len(passages)} passages ({retriever.describe()}) in {retrieval_ms:.0f} ms: "
        + ", ".join(f"[{p.rank}] {shown(p.citation)}" for p in passages)
    )
    click.echo(comparison_table(results))
    for r in results:
        if r.error:
            click.secho(shown(f"{r.name}: {r.error}"), fg="yellow", err=True)
