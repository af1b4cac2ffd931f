"""The whole of `rag train reader`: data, split by article, negatives, training, held-in
evaluation, the no-answer margin, and a model folder with its card.

The held-in articles are evaluated three ways (`rag.readers.evaluate`) and the margin is
calibrated there. With `held_in=0` every article is trained on: the model then has no held-in
numbers of its own, and its card says to read them from the held-in run with the same settings.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.integrity import seal
from rag.readers.base import MARKER
from rag.train.checkpoints import branch
from rag.train.data import Example, load_examples, split_by_article
from rag.train.loop import questions_trained
from rag.train.reader import MODEL_DIR, TrainSettings, train
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
        }
    }
    margin = float("-inf")
    if held:
        from rag.readers.loading import load_reader

        reader = load_reader(str(out / MODEL_DIR), backend="torch", threads=threads)
        reader.logits.model.to(device)  # the saved weights, read where they trained
        margin, metrics["held_in"] = held_in_metrics(reader, held, ranked, progress)
        say(f"held-in: {json.dumps(metrics['held_in'])}")
    trained = questions_trained(settings, len(train_set))
    write_card(out / MODEL_DIR, settings, metrics, margin, command, trained, len(held))
    if evaluate_int8:
        from rag.readers.export import export_reader

        export_reader(out / MODEL_DIR, say=say)
        if held:
            # The margin the model ships with is calibrated on what runs by default: int8 ONNX.
            reader = load_reader(str(out / MODEL_DIR), backend="onnx", threads=threads)
            margin, metrics["held_in_int8"] = held_in_metrics(reader, held, ranked, progress)
            say(f"held-in, int8 ONNX: {json.dumps(metrics['held_in_int8'])}")
            write_card(out / MODEL_DIR, settings, metrics, margin, command, trained, len(held))
    return ReaderRun(out / MODEL_DIR, True, metrics, result.seconds, result.examples_per_second)


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
        with (out / CURVE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        say(f"learning curve: {json.dumps(record)}")

    return at_point


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


def device_name(model) -> str:
    """What trained the model of a curve point: the CPU, or the GPU's name (its seconds are not
    the CPU's and a curve says which)."""
    from rag.train.device import device_of

    device = device_of(model)
    if device.startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


REPO = Path(__file__).resolve().parents[2]


def repo_relative(path: str) -> str:
    """`path` relative to the project's root (../shared/datasets/... for the shared data), so a
    model's record names no absolute path of the machine it was trained on."""
    import os

    return os.path.relpath(path, REPO) if path else path


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


def write_card(
    folder: Path, settings: TrainSettings, metrics: dict, margin: float, command: str, trained: int, held: int
) -> None:
    """rag-reader.json (how rag reads the model) and README.md (the model card)."""
    from rag.cpu import this_cpu

    cpu = this_cpu()
    record = {
        "format": "rag-reader",
        "margin": margin if margin != float("-inf") else None,
        "max_answer_tokens": 30,
        "max_length": settings.max_length,
        "stride": settings.stride,
        "settings": {**settings.key(), "data": repo_relative(settings.data)},
        "metrics": metrics,
        "command": command,
        "cpu": cpu.model,
        "python": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_trained": trained,
        "questions_held_in": held,
    }
    (folder / MARKER).write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")


def model_card(record: dict) -> str:
    s = record["settings"]
    m = record["metrics"]
    held = m.get("held_in")
    lines = [
        "# minilm-reader: an encoder-only extractive QA reader, trained by rag",
        "",
        "all-MiniLM-L6-v2 (6 layers, 384 hidden, 22.7M parameters) with a span head (start/end logits),",
        "fine-tuned by `rag train reader` on two CPU cores. It answers by pointing at a span of a passage,",
        'and says "Not in the documents." when no span beats the no-answer score by its margin.',
        "",
        "## Base model and data",
        f"- Base: {s['base']} (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).",
        f"- Data: {Path(s['data']).name} (sha256 {s['data_sha256'][:16]}…): SQuAD v1.1 (Rajpurkar et al., 2016), CC BY-SA 4.0.",
        f"- {record['questions_trained']} questions trained on; held-in articles (never trained on): "
        f"{', '.join(s['held_in']) or 'none (every article was trained on)'}.",
        f"- No-answer passages per question from rag's hybrid retriever: {s['negatives']}.",
        "",
        "## How it was trained",
        f"- Command: `{record['command']}`",
        f"- Seed {s['seed']}; {s['epochs']} epochs; lr {s['lr']} (AdamW, weight decay {s['weight_decay']}, "
        f"warm-up {s['warmup']:.0%}, linear decay); batches of {s['batch_size']}, length-grouped, dynamically padded;",
        f"  windows of {s['max_length']} tokens, stride {s['stride']}.",
        f"- CPU: {record['cpu']}; {m.get('training', {}).get('seconds', '?')} s, "
        f"{m.get('training', {}).get('windows_per_second', '?')} windows/s.",
        *cooldown_lines(s, m),
        "",
        "## Metrics",
    ]
    run = record.get("held_in_run")
    if held:
        lines += held_in_lines(m)
    elif run:
        lines += [
            "Trained on every article, so it has no held-in numbers of its own, and its numbers on SQuAD part A",
            "mean nothing. Its hyper-parameters, and its no-answer margin, come from the held-in run with the same",
            f"settings (`{run['command']}`), whose numbers follow: read them as this model's expected quality.",
            "",
            *held_in_lines(run["metrics"]),
        ]
    else:
        lines += [
            "Trained on every article: it has no held-in numbers of its own. Its quality is that of the",
            "held-in run with the same settings (BENCHMARKS.md); its numbers on SQuAD part A mean nothing.",
        ]
    lines += ["", "## Licence", "Apache-2.0 (weights, as the base model); trained on CC BY-SA 4.0 data.", ""]
    return "\n".join(lines)


def cooldown_lines(s: dict, m: dict) -> list[str]:
    """The card's lines for a run finished early by a cooldown."""
    cooldown = s.get("cooldown")
    if not cooldown:
        return []
    return [
        f"- Finished early (a cooldown): continued from step {cooldown['from_step']} of a run with these settings",
        f"  (`--from-run`), the learning rate decaying linearly from its value there to 0 at {cooldown['questions']}",
        f"  questions' worth of windows (step {m.get('training', {}).get('steps', '?')}); times count both runs.",
    ]


def held_in_lines(m: dict) -> list[str]:
    """The card's lines for one run's held-in metrics (fp32, and int8 where measured)."""
    held = m["held_in"]
    shipped = m.get("held_in_int8") or held
    runtime = "int8 ONNX, as shipped" if "held_in_int8" in m else "PyTorch fp32"
    lines = [
        f"On the {held['questions']} questions of the held-in articles (official SQuAD v1.1 F1/EM), PyTorch fp32:",
        f"- gold paragraph: F1 {held['gold_f1']}, EM {held['gold_em']}",
        f"- 5 retrieved passages (hybrid), best span always given: F1 {held['retrieved_f1']}, EM {held['retrieved_em']}",
    ]
    if "held_in_int8" in m:
        lines.append(f"- int8 ONNX: gold F1 {shipped['gold_f1']}, retrieved F1 {shipped['retrieved_f1']}")
    lines.append(
        f'- "Not in the documents." ({runtime}, margin {shipped.get("margin")}, chosen to decline at most 10% of '
        f"readings whose passages hold the answer): declines {shipped.get('abstain_answer_in_passages')} of those "
        f"and {shipped.get('abstain_answer_in_no_passage')} of readings whose passages do not hold it; "
        f"retrieved F1 counting declines as wrong: {shipped.get('retrieved_f1_abstaining')}"
    )
    return lines
