"""The whole of `rag train reader`: data, split by article, negatives, training, held-in
evaluation, the no-answer margin, and a model folder with its card.

The held-in articles are evaluated three ways (`rag.readers.evaluate`) and the margin is
calibrated there. With `held_in=0` every article is trained on: the model then has no held-in
numbers of its own, and its card says to read them from the held-in run with the same settings.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.train.checkpoints import branch
from rag.train.data import Example, load_examples, split_by_article
from rag.train.loop import questions_trained
from rag.train.reader import MODEL_DIR, TrainSettings, train
from rag.train.reader_card import REPO, model_card, repo_relative, write_card  # noqa: F401 - re-exported
from rag.train.retrieved import (  # noqa: F401 - re-exported: the reranker's run uses them too
    RETRIEVAL,
    Retrieved,
    add_negatives,
    article_of,
    cached_retrieval,
    holds_answer,
    negatives_of,
    retrieval_for,
)

# SQuAD's training set: part A of the development set is for evaluation only (BENCHMARKS.md).
DEFAULT_DATA = Path("../shared/datasets/squad/train-v1.0.json")
CURVE = "curve.jsonl"
DEFAULT_HELD_IN = 4
PASSAGES = 5
SPLIT_SEED = 0  # which articles are held in: fixed, so runs with other training seeds compare


@dataclass
class ReaderRun:
    folder: Path  # the model folder (None until training finished)
    finished: bool
    metrics: dict
    train_seconds: float
    windows_per_second: float


def _sha256(path: Path) -> str:
    from rag.store import file_sha256

    return file_sha256(path)


def split_for_training(
    data: Path, settings, held_in: int, say: Callable[[str], None]
) -> tuple[list[Example], list[Example]]:
    """(train, held-in) examples of `data`, split by article with the fixed seed; the data's path,
    hash and held-in articles recorded in `settings` (so a resumed run checks them)."""
    examples = load_examples(data)
    train_set, held = split_by_article(examples, held_in, SPLIT_SEED)
    settings.data = str(data.resolve())
    settings.data_sha256 = _sha256(data)
    settings.held_in = sorted({e.article for e in held})
    say(
        f"{len(examples)} questions from {len({e.article for e in examples})} articles: "
        f"training on {len(train_set)}, holding in {len(held)} ({', '.join(settings.held_in) or 'none'})"
    )
    return train_set, held


def train_reader(
    data: Path,
    out: Path,
    settings: TrainSettings,
    *,
    held_in: int = DEFAULT_HELD_IN,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str = "",
    stop_after: int | None = None,
    evaluate_int8: bool = True,
    curve: Sequence[int] = (),
    from_run: Path | None = None,
    finish_at: int | None = None,
    checkpoint_seconds: float | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> ReaderRun:
    """`curve`: numbers of questions at which the run's model is evaluated on the held-in articles
    (gold paragraph and 5 retrieved passages) and kept, one line each in `out/curve.jsonl`.

    `from_run` and `finish_at`: a cooldown. The latest checkpoint of the run in `from_run` (same
    settings, possibly still training) is continued in `out`, its learning rate decaying linearly
    to zero by `finish_at` questions' worth; that run is only read."""
    from rag.outdir import claim_out

    data = Path(data)
    train_set, held = split_for_training(data, settings, held_in, say)
    claim_out(out, "train")  # before retrieval and training: a folder that is not ours is refused at once
    if from_run is not None:
        settings.cooldown = branch(Path(from_run), out, finish_at, settings, say)
    ranked: dict[str, list] = {}
    if settings.negatives or held:
        asked = [*train_set, *held] if settings.negatives else held
        depth = 30
        # Only what is used is kept: the top `depth` for held-in questions (evaluation), and for
        # training questions the passages that qualify as negatives (`add_negatives`), at most a few.
        key = {
            "data_sha256": settings.data_sha256,
            "held_in": settings.held_in,
            "depth": depth,
            "negatives": settings.negatives,
            "questions": len(asked),
        }

        def compute() -> dict[str, list]:
            found = retrieval_for(data, asked, depth, progress, say)
            held_ids, held_articles = {q.id for q in held}, set(settings.held_in)
            for q in train_set:
                if q.id in found:
                    found[q.id] = negatives_of(q, found[q.id], held_articles)[: settings.negatives]
            return {k: v for k, v in found.items() if k in held_ids or settings.negatives}

        ranked = cached_retrieval(out, key, compute, say)
    if settings.negatives:
        say(
            f"{add_negatives(train_set, ranked, settings.negatives, settings.held_in)} no-answer passages added from retrieval"
        )
    at_point = None
    if curve and held:
        at_point = curve_point(out, held, ranked, threads, progress, say)
    elif curve:
        say("no held-in articles (--held-in 0): the learning curve is not measured")
    result = train(
        train_set,
        out,
        settings,
        threads=threads,
        device=device,
        progress=progress,
        stop_after=stop_after,
        curve=curve,
        at_point=at_point,
        say=say,
        **({} if checkpoint_seconds is None else {"checkpoint_seconds": checkpoint_seconds}),
    )
    finished = (out / MODEL_DIR).is_dir() and result.steps >= 1 and stop_after is None
    metrics: dict = {}
    if not finished:
        return ReaderRun(out / MODEL_DIR, False, metrics, result.seconds, result.examples_per_second)
    metrics = {
        "training": {
            "windows": result.windows,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "windows_per_second": round(result.examples_per_second, 2),
            "resumed_from_step": result.resumed_from,
            "device": device_label(device),
            "precision": run_precision(out),
        }
    }
    trained = questions_trained(settings, len(train_set))
    finish_reader(
        out / MODEL_DIR,
        settings,
        metrics,
        held,
        ranked,
        command,
        trained,
        threads,
        device,
        evaluate_int8,
        progress,
        say,
    )
    return ReaderRun(out / MODEL_DIR, True, metrics, result.seconds, result.examples_per_second)


def finish_reader(
    folder: Path,
    settings: TrainSettings,
    metrics: dict,
    held: Sequence[Example],
    ranked: dict[str, list],
    command: str,
    trained: int,
    threads: int | None = None,
    device: str = "cpu",
    evaluate_int8: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """What follows training, on the model folder: held-in metrics (fp32), the card, then the int8
    ONNX export and the no-answer margin calibrated on it (what runs by default). Also runs alone on
    a folder whose run was trained elsewhere and stopped during this step (`benchmarks/finish_reader.py`)."""
    margin = float("-inf")
    if held:
        from rag.readers.loading import load_reader

        reader = load_reader(str(folder), backend="torch", threads=threads)
        reader.logits.model.to(device)  # the saved weights, read where they trained
        margin, metrics["held_in"] = held_in_metrics(reader, held, ranked, progress)
        say(f"held-in: {json.dumps(metrics['held_in'])}")
    write_card(folder, settings, metrics, margin, command, trained, len(held))
    if evaluate_int8:
        from rag.readers.export import export_reader

        export_reader(folder, say=say)
        if held:
            # The margin the model ships with is calibrated on what runs by default: int8 ONNX.
            reader = load_reader(str(folder), backend="onnx", threads=threads)
            margin, metrics["held_in_int8"] = held_in_metrics(reader, held, ranked, progress)
            say(f"held-in, int8 ONNX: {json.dumps(metrics['held_in_int8'])}")
            write_card(folder, settings, metrics, margin, command, trained, len(held))
    return metrics


def curve_point(
    out: Path, held: Sequence[Example], ranked: dict[str, list], threads: int | None, progress: bool, say
) -> Callable:
    """The learning curve's evaluation at a checkpoint: the live model read through rag's own
    SpanReader (fp32), gold paragraph and 5 retrieved passages per held-in question; one JSON line
    in out/curve.jsonl, and the model kept as out/curve/<questions>q (for later evaluations). A
    point already recorded is not measured again (a resumed run passes it by)."""
    import torch

    def at_point(questions: int, clock: dict, model, tokenizer) -> None:
        from rag.readers.backends import TorchLogits
        from rag.readers.evaluate import evaluate
        from rag.readers.reader import SpanReader
        from rag.train.checkpoints import save_model

        if questions in recorded_points(out):
            return
        say(f"learning curve: {questions} questions seen (step {clock['step']}): evaluating on {len(held)} held-in")
        started = time.monotonic()
        reader = SpanReader("curve", tokenizer, TorchLogits(model, threads), pad_id=tokenizer.pad_token_id or 0)
        retrieved = {q.id: passages_for(q, ranked)[0] for q in held}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = lambda items: tqdm(items, desc=f"held-in at {questions}q", unit="q")  # noqa: E731
        with torch.inference_mode():
            summary = evaluate(reader, held, retrieved, None, bar).summary()
        keep = out / "curve" / f"{questions}q"
        keep.parent.mkdir(exist_ok=True)
        save_model(model, tokenizer, keep)
        record = {
            "questions": questions,
            "step": clock["step"],
            "windows_seen": clock["seen"],
            "train_seconds": round(clock["seconds"], 2),
            "train_cpu_seconds": round(clock["cpu_seconds"], 2),
            "threads": torch.get_num_threads(),
            "device": device_name(model),
            **{k: v for k, v in summary.items() if k != "questions"},
            "held_in_questions": summary["questions"],
            "eval_seconds": round(time.monotonic() - started, 1),
            "model": str(keep.relative_to(out)),
        }
        record_point(out, record, say)

    return at_point


def record_point(out: Path, record: dict, say: Callable[[str], None]) -> None:
    """One learning-curve point: a line of out/curve.jsonl (appended whole), and said."""
    with (out / CURVE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    say(f"learning curve: {json.dumps(record)}")


def recorded_points(out: Path) -> set[int]:
    """The curve points out/curve.jsonl holds (a line cut by a kill, or empty, is not one: that
    point is measured again)."""
    try:
        lines = (out / CURVE).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return set()
    done = set()
    for line in lines:
        try:
            done.add(int(json.loads(line)["questions"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


def run_precision(out: Path) -> str:
    """The precision the run's steps trained in, from its train-log.jsonl ("bf16", "fp32", or
    "mixed" for a run that changed machines; "fp32" where the log predates the field)."""
    seen = set()
    try:
        for line in (out / "train-log.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                seen.add(json.loads(line).get("precision", "fp32"))
            except (ValueError, AttributeError):
                continue
    except FileNotFoundError:
        pass
    return seen.pop() if len(seen) == 1 else ("mixed" if seen else "fp32")


def device_name(model) -> str:
    """What trained the model of a curve point: the CPU, or the GPU's name (its seconds are not
    the CPU's and a curve says which)."""
    from rag.train.device import device_of

    return device_label(device_of(model))


def device_label(device: str) -> str:
    """ "cpu", or "cuda (the GPU's name)"."""
    if device.startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


def held_in_examples(reader: str) -> tuple[Path, list[Example]]:
    """(the data a reader was trained from, its held-in questions), from its rag-reader.json."""
    from rag.readers.loading import reader_folder, settings

    record = settings(reader_folder(reader))["settings"]
    data = Path(record["data"])
    if not data.is_absolute():  # recorded relative to the project's root (a card names no machine's path)
        data = REPO / data
    held = set(record["held_in"])
    return data, [e for e in load_examples(data) if e.article in held]


def passages_for(q: Example, ranked: dict[str, list], n: int = PASSAGES) -> tuple[list[str], list[str]]:
    """(answerable, unanswerable) passage texts: the top `n` retrieved; the top `n` of those not
    from the question's own article."""
    found = ranked.get(q.id, [])
    own = {q.article}
    return [p.text for p in found[:n]], [p.text for p in found if article_of(p.doc_path, own) is None][:n]


def held_in_metrics(
    reader, held: Sequence[Example], ranked: dict[str, list], progress: bool, margin: float | None = None
) -> tuple[float, dict]:
    from rag.readers.evaluate import calibrate, evaluate

    split = {q.id: passages_for(q, ranked) for q in held}
    retrieved = {qid: answerable for qid, (answerable, _) in split.items()}
    unanswerable = {qid: other for qid, (_, other) in split.items()}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = lambda items: tqdm(items, desc="held-in", unit="q")  # noqa: E731
    scored = evaluate(reader, held, retrieved, unanswerable, bar)
    # Sorted by what the passages hold, not by how they were chosen: retrieved passages without the
    # answer are unanswerable readings; "unanswerable" ones that happen to hold an answer string are
    # left out; a question with no passages at all is left out of both.
    with_answer, without = [], []
    for q, r, u in zip(held, scored.retrieved, scored.unanswerable):
        if retrieved[q.id]:
            (with_answer if any(holds_answer(t, q.answers) for t in retrieved[q.id]) else without).append(r)
        if unanswerable[q.id] and not any(holds_answer(t, q.answers) for t in unanswerable[q.id]):
            without.append(u)
    if margin is None:
        margin = calibrate(with_answer, without)
    summary = scored.summary(margin)
    summary["abstain_answer_in_passages"] = round(
        sum(s.gap < margin for s in with_answer) / max(1, len(with_answer)), 4
    )
    summary["abstain_answer_in_no_passage"] = round(sum(s.gap < margin for s in without) / max(1, len(without)), 4)
    summary["readings_answer_in_passages"], summary["readings_answer_in_no_passage"] = len(with_answer), len(without)
    return margin, summary
