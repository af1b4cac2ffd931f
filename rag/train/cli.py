"""`rag train`: models rag trains here, from the packaged MiniLM (click only; torch loads when it runs)."""

from __future__ import annotations

from pathlib import Path

import click

from rag.train.cli_options import (
    _command,
    _curve,
    _data,
    _device_option,
    _end_options,
    _precision_option,
    _run_options,
)


@click.group()
def train_command() -> None:
    """Train a model here (on this CPU) from the packaged all-MiniLM-L6-v2: a reader, a reranker or a generator."""


@train_command.command("reader")
@_precision_option
@_run_options
@click.option(
    "--negatives",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Retrieved passages without the answer per question, trained as no-answer.",
)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--curve",
    default="",
    metavar="N,N,...",
    help="A learning curve: after N questions' worth of windows trained on, evaluate on the held-in articles and keep "
    "the model (OUT/curve.jsonl, OUT/curve/Nq). E.g. 5000,10000,20000,40000.",
)
@click.option(
    "--from-run",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Finish a long run early (a cooldown): continue that run's latest checkpoint in --out, same settings, "
    "the learning rate decaying linearly to 0 at --finish-at. The run itself is only read.",
)
@click.option(
    "--finish-at",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --from-run: the questions' worth of windows at which the cooldown ends.",
)
@_device_option
@_end_options
def reader(
    data,
    out,
    base,
    held_in,
    negatives,
    epochs,
    lr,
    batch_size,
    curve,
    from_run,
    finish_at,
    seed,
    threads,
    no_onnx,
    quiet,
    device,
) -> None:
    """Fine-tune an encoder with a span head (extractive QA); resumes after a kill with the same command."""
    from rag.train.reader import TrainSettings
    from rag.train.run_reader import train_reader

    points = _curve(curve)
    if (from_run is None) != (finish_at is None):
        raise click.UsageError("--from-run and --finish-at go together: the run to finish, and where")
    if from_run is not None and points:
        raise click.UsageError("--curve is measured on the run itself, not on a cooldown (--from-run)")
    data = _data(data)
    settings = TrainSettings(base=base, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, negatives=negatives)
    command = _command(click.get_current_context().params, data)
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    from rag.train.device import resolve_device

    run = train_reader(
        data,
        out,
        settings,
        held_in=held_in,
        threads=threads,
        device=resolve_device(device),
        progress=not quiet,
        command=command,
        evaluate_int8=not no_onnx,
        curve=points,
        from_run=from_run,
        finish_at=finish_at,
        say=say,
    )
    held = run.metrics.get("held_in")
    click.echo(f"model: {run.folder} ({run.train_seconds:.0f} s, {run.windows_per_second:.1f} windows/s)")
    if held:
        click.echo(
            f"held-in ({held['questions']} questions): gold paragraph F1 {held['gold_f1']:.3f} EM {held['gold_em']:.3f}; "
            f"5 retrieved passages F1 {held['retrieved_f1']:.3f}; abstains on {held['abstain_unanswerable']:.0%} "
            f"of unanswerable, {held['abstain_answerable_retrieved']:.0%} of answerable"
        )
    click.echo(f"ask with it: rag ask QUESTION -g {run.folder}")


@train_command.command("reranker")
@_precision_option
@_run_options
@click.option(
    "--group",
    type=click.IntRange(min=2),
    default=4,
    show_default=True,
    help="Passages per question: one positive and GROUP-1 hard negatives mined with rag's hybrid and dense retrievers.",
)
@click.option("--loss", type=click.Choice(["listwise", "bce"]), default="listwise", show_default=True)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Questions per step.")
@click.option(
    "--curve",
    default="",
    metavar="N,N,...",
    help="A learning curve: after N questions, rerank the held-in questions and keep the model (OUT/curve.jsonl, OUT/curve/Nq).",
)
@click.option(
    "--from-run",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Finish a long run early (a cooldown), as `rag train reader --from-run`.",
)
@click.option("--finish-at", type=click.IntRange(min=1), default=None, metavar="N")
@_end_options
def reranker(
    data,
    out,
    base,
    held_in,
    group,
    loss,
    epochs,
    lr,
    batch_size,
    curve,
    from_run,
    finish_at,
    seed,
    threads,
    no_onnx,
    quiet,
) -> None:
    """Fine-tune an encoder as a cross-encoder reranker; resumes after a kill with the same command."""
    from rag.train.reranker import RerankSettings
    from rag.train.run_reranker import train_reranker

    points = _curve(curve)
    if (from_run is None) != (finish_at is None):
        raise click.UsageError("--from-run and --finish-at go together: the run to finish, and where")
    if from_run is not None and points:
        raise click.UsageError("--curve is measured on the run itself, not on a cooldown (--from-run)")
    data = _data(data)
    settings = RerankSettings(base=base, epochs=epochs, lr=lr, batch_size=batch_size, group=group, loss=loss, seed=seed)
    command = _command(click.get_current_context().params, data, "reranker")
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    run = train_reranker(
        data,
        out,
        settings,
        held_in=held_in,
        threads=threads,
        progress=not quiet,
        command=command,
        export=not no_onnx,
        curve=points,
        from_run=from_run,
        finish_at=finish_at,
        say=say,
    )
    click.echo(f"model: {run.folder} ({run.train_seconds:.0f} s, {run.pairs_per_second:.1f} pairs/s)")
    held = run.metrics.get("held_in_int8") or run.metrics.get("held_in")
    if held:
        best = held["chosen"]
        click.echo(
            f"held-in ({held['questions']} questions): recall@1 {held['retriever']['recall@1']:.3f} -> "
            f"{best['recall@1']:.3f} reranking the top {best['pool']} (fusion weight {best['weight']:g})"
        )
    click.echo(f"search with it: rag search QUESTION --reranker {run.folder}")


@train_command.command("generator")
@_precision_option
@_run_options
@click.option(
    "--family",
    type=click.Choice(["encoder-decoder", "decoder-only"]),
    required=True,
    help="encoder-decoder: MiniLM as encoder and (with new cross-attention) decoder, weights shared; "
    "decoder-only: MiniLM as one stack with an LM head.",
)
@click.option(
    "--attention",
    type=click.Choice(["prefix", "causal"]),
    default="prefix",
    show_default=True,
    help="decoder-only: read the prompt bidirectionally and the answer causally (prefix, UniLM), or all causally.",
)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option(
    "--new-lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Peak rate of the new weights (cross-attention, the LM head's transform).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-input", type=click.IntRange(min=32, max=512), default=256, show_default=True)
@click.option(
    "--curve",
    default="",
    metavar="N,N,...",
    help="A learning curve: after N questions trained on, answer the held-in questions and keep the model "
    "(OUT/curve.jsonl, OUT/curve/Nq).",
)
@click.option(
    "--from-run",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Finish a long run early (a cooldown), as `rag train reader --from-run`.",
)
@click.option("--finish-at", type=click.IntRange(min=1), default=None, metavar="N")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_device_option
def generator(
    data,
    out,
    base,
    held_in,
    family,
    attention,
    epochs,
    lr,
    new_lr,
    batch_size,
    max_input,
    curve,
    from_run,
    finish_at,
    seed,
    threads,
    quiet,
    device,
) -> None:
    """Train a generator from MiniLM: the encoder-decoder or decoder-only family, on the reader's data
    and split, so it compares with the reader on equal terms; resumes after a kill with the same command."""
    from rag.train.generator import GenSettings
    from rag.train.run_generator import train_generator

    points = _curve(curve)
    if (from_run is None) != (finish_at is None):
        raise click.UsageError("--from-run and --finish-at go together: the run to finish, and where")
    if from_run is not None and points:
        raise click.UsageError("--curve is measured on the run itself, not on a cooldown (--from-run)")
    data = _data(data)
    settings = GenSettings(
        family=family,
        attention=attention if family == "decoder-only" else "",
        base=base,
        epochs=epochs,
        lr=lr,
        new_lr=new_lr,
        batch_size=batch_size,
        max_input=max_input,
        seed=seed,
    )
    command = _command(click.get_current_context().params, data, "generator")
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    from rag.train.device import resolve_device

    run = train_generator(
        data,
        out,
        settings,
        held_in=held_in,
        threads=threads,
        device=resolve_device(device),
        progress=not quiet,
        command=command,
        curve=points,
        from_run=from_run,
        finish_at=finish_at,
        say=say,
    )
    click.echo(f"model: {run.folder} ({run.train_seconds:.0f} s, {run.examples_per_second:.1f} questions/s)")
    held = run.metrics.get("held_in")
    if held:
        click.echo(
            f"held-in ({held['questions']} questions): gold paragraph F1 {held['gold_f1']:.3f} EM {held['gold_em']:.3f}; "
            f"5 retrieved passages F1 {held['retrieved_f1']:.3f}"
        )
    click.echo(f"ask with it: rag ask QUESTION -g {run.folder}")


@train_command.command("embedder")
@_precision_option
@_run_options
@click.option(
    "--group",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Passages per question: its own and GROUP-1 hard negatives mined with rag's hybrid and dense retrievers.",
)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-5, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="Questions per step; every other question's passages are its negatives too.",
)
@click.option(
    "--curve",
    default="",
    help="A learning curve: after N questions trained on, keep the model (OUT/curve/Nq) and record held-in "
    "recall beside the base model's (OUT/curve.jsonl). E.g. 2000,4000,8000.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def embedder(data, out, base, held_in, group, epochs, lr, batch_size, curve, seed, threads, quiet) -> None:
    """Fine-tune the bi-encoder that embeds passages and questions on your QA pairs (multiple-negatives
    ranking loss); the result is a sentence-transformers folder for `--embedder`. Resumes after a kill."""
    from rag.train.embedder import EmbedSettings
    from rag.train.run_embedder import train_embedder

    data = _data(data)
    settings = EmbedSettings(base=base, epochs=epochs, lr=lr, batch_size=batch_size, group=group, seed=seed)
    command = _command(click.get_current_context().params, data, "embedder")
    say = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    run = train_embedder(
        data,
        out,
        settings,
        held_in=held_in,
        threads=threads,
        progress=not quiet,
        command=command,
        curve=_curve(curve),
        say=say,
    )
    click.echo(f"model: {run.folder} ({run.train_seconds:.0f} s, {run.questions_per_second:.1f} questions/s)")
    if "held_in" in run.metrics:
        base_r, tuned = run.metrics["held_in_base"], run.metrics["held_in"]
        click.echo(
            f"held-in ({tuned['questions']} questions, {tuned['passages']} paragraphs): recall@5 "
            f"{base_r['recall@5']:.3f} -> {tuned['recall@5']:.3f}, recall@1 {base_r['recall@1']:.3f} -> {tuned['recall@1']:.3f}"
        )
    click.echo(f"index with it: rag index FOLDER --embedder {run.folder}")
