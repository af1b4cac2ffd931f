"""The whole of `rag train generator`: the reader's data and held-in split, held-in retrieval,
training, the learning curve at checkpoints, held-in evaluation, and a model folder with its card.

The held-in questions are answered twice, as `rag bench` would: from the gold paragraph alone,
and from the 5 passages rag's hybrid retriever returns over every paragraph of the data (the
encoder-decoder reads them Fusion-in-Decoder style, each passage encoded with the question on its
own; the decoder-only model reads them laid end to end, cut to its 512 positions).
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

from rag.generators.base import ENCODER_DECODER
from rag.integrity import seal
from rag.train.checkpoints import MODEL_DIR, branch
from rag.train.data import Example
from rag.train.generator import GenSettings, train
from rag.train.loop import questions_trained
from rag.train.run_reader import PASSAGES, repo_relative, split_for_training

MAX_NEW_TOKENS = 32
WINDOW = 512  # MiniLM's positions


@dataclass
class GeneratorRun:
    folder: Path
    finished: bool
    metrics: dict
    train_seconds: float
    examples_per_second: float


def as_generator(name: str, model, tokenizer, family: str):
    """A trained MiniLM generator behind rag's Generator protocol (greedy decoding by default),
    answering on the device its weights are on."""
    from rag.generators.causal import CausalGenerator
    from rag.generators.prompts import QuestionPassagePrompt
    from rag.generators.seq2seq import Seq2SeqGenerator
    from rag.train.device import device_of

    cls = Seq2SeqGenerator if family == ENCODER_DECODER else CausalGenerator
    model.eval()
    return cls(
        name, model, tokenizer, context_window=WINDOW, prompt_style=QuestionPassagePrompt(), device=device_of(model)
    )


def held_in_scores(generator, held: Sequence[Example], ranked: dict[str, list], progress: bool, desc: str) -> dict:
    """F1 and EM on the held-in questions from the gold paragraph and from 5 retrieved passages."""
    import torch

    from rag.documents import Passage
    from rag.metrics import exact_match, f1

    def passage(text: str, doc: str, rank: int) -> Passage:
        return Passage(0, doc, text, 0, len(text), 1, 1, 0.0, rank)

    fid = generator.family == ENCODER_DECODER
    sums = {"gold_f1": 0.0, "gold_em": 0.0, "retrieved_f1": 0.0, "retrieved_em": 0.0}
    ms: list[float] = []
    items = held
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(held, desc=desc, unit="q")
    with torch.inference_mode():
        for q in items:
            gold = generator.generate(q.question, [passage(q.context, q.doc, 1)], max_new_tokens=MAX_NEW_TOKENS)
            sums["gold_f1"] += f1(gold.text, q.answers)
            sums["gold_em"] += exact_match(gold.text, q.answers)
            found = [passage(p.text, p.doc_path, i) for i, p in enumerate(ranked.get(q.id, [])[:PASSAGES], 1)]
            started = time.perf_counter()
            answer = generator.generate(q.question, found, max_new_tokens=MAX_NEW_TOKENS, fid=fid and bool(found))
            ms.append((time.perf_counter() - started) * 1000)
            sums["retrieved_f1"] += f1(answer.text, q.answers)
            sums["retrieved_em"] += exact_match(answer.text, q.answers)
    n = max(1, len(held))
    out = {k: round(v / n, 4) for k, v in sums.items()}
    out["questions"] = len(held)
    out["answer_ms_p50_retrieved"] = round(sorted(ms)[len(ms) // 2], 1) if ms else None
    return out


def train_generator(
    data: Path,
    out: Path,
    settings: GenSettings,
    *,
    held_in: int = 5,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str = "",
    stop_after: int | None = None,
    curve: Sequence[int] = (),
    from_run: Path | None = None,
    finish_at: int | None = None,
    checkpoint_seconds: float | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> GeneratorRun:
    """Train (or resume) one family into `out`; `curve`, `from_run` and `finish_at` as for the reader."""
    from rag.outdir import claim_out
    from rag.train.retrieved import cached_retrieval, retrieval_for

    data = Path(data)
    train_set, held = split_for_training(data, settings, held_in, say)
    claim_out(out, "train")
    if from_run is not None:
        settings.cooldown = branch(Path(from_run), out, finish_at, settings, say)
    ranked: dict[str, list] = {}
    if held:
        key = {"data_sha256": settings.data_sha256, "held_in": settings.held_in, "depth": PASSAGES, "negatives": 0}
        key["questions"] = len(held)
        ranked = cached_retrieval(out, key, lambda: retrieval_for(data, held, PASSAGES, progress, say), say)
    at_point = curve_point(out, settings, held, ranked, progress, say, command) if curve and held else None
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
    if not finished:
        return GeneratorRun(out / MODEL_DIR, False, {}, result.seconds, result.examples_per_second)
    metrics: dict = {
        "training": {
            "examples": result.examples,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "examples_per_second": round(result.examples_per_second, 2),
            "resumed_from_step": result.resumed_from,
        }
    }
    from rag.generators.int8_weights import WEIGHTS, save_int8
    from rag.generators.minilm import load_minilm_generator, model_class

    model = model_class(settings.family, settings.attention).from_pretrained(str(out / MODEL_DIR))
    metrics["training"]["int8_bytes"] = save_int8(model, out / MODEL_DIR / WEIGHTS)
    if held:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(out / MODEL_DIR))
        generator = as_generator("held-in", model.to(device), tokenizer, settings.family)
        metrics["held_in"] = held_in_scores(generator, held, ranked, progress, "held-in")
        say(f"held-in: {json.dumps(metrics['held_in'])}")
        # and as it would ship: the int8-stored weights, dequantised (rag.generators.int8_weights)
        record = {"family": settings.family, "attention": settings.attention, "window": WINDOW}
        shipped = load_minilm_generator(out / MODEL_DIR, "held-in-int8", record, device=device, int8=True)
        metrics["held_in_int8"] = held_in_scores(shipped, held, ranked, progress, "held-in, int8 weights")
        say(f"held-in, int8-stored weights: {json.dumps(metrics['held_in_int8'])}")
    write_card(out / MODEL_DIR, settings, metrics, command, questions_trained(settings, len(train_set)), len(held))
    return GeneratorRun(out / MODEL_DIR, True, metrics, result.seconds, result.examples_per_second)


def curve_point(out: Path, settings: GenSettings, held, ranked, progress: bool, say, command: str = "") -> Callable:
    """As the reader's (`rag.train.run_reader.curve_point`): held-in F1 at a checkpoint, one line
    in out/curve.jsonl, the model kept in out/curve/<questions>q with its record and card (so
    `rag bench -g RUN/curve/8000q` measures it); a recorded point is not redone."""
    import torch

    from rag.train.run_reader import device_name, record_point, recorded_points

    def at_point(questions: int, clock: dict, model, tokenizer) -> None:
        from rag.train.checkpoints import save_model

        if questions in recorded_points(out):
            return
        say(f"learning curve: {questions} questions seen (step {clock['step']}): evaluating on {len(held)} held-in")
        started = time.monotonic()
        generator = as_generator("curve", model, tokenizer, settings.family)
        scores = held_in_scores(generator, held, ranked, progress, f"held-in at {questions}q")
        keep = out / "curve" / f"{questions}q"
        keep.parent.mkdir(exist_ok=True)
        save_model(model, tokenizer, keep)
        record = {
            "questions": questions,
            "step": clock["step"],
            "examples_seen": clock["seen"],
            "train_seconds": round(clock["seconds"], 2),
            "train_cpu_seconds": round(clock["cpu_seconds"], 2),
            "threads": torch.get_num_threads(),
            "device": device_name(model),
            **{k: v for k, v in scores.items() if k != "questions"},
            "held_in_questions": scores["questions"],
            "eval_seconds": round(time.monotonic() - started, 1),
            "model": str(keep.relative_to(out)),
        }
        mark_curve_model(out, settings, record, command, len(held))
        record_point(out, record, say)

    return at_point


def mark_curve_model(out: Path, settings: GenSettings, point: dict, command: str, held: int) -> Path:
    """The record and card of a model kept at a curve point (out/<point["model"]>): trained on the
    questions seen by then, still at that step's learning rate (the card says so)."""
    folder = out / point["model"]
    metrics = {
        "training": {
            "steps": point["step"],
            "seconds": point["train_seconds"],
            "cpu_seconds": point["train_cpu_seconds"],
            "curve_point": True,
        },
        "held_in": {k: point[k] for k in ("gold_f1", "gold_em", "retrieved_f1", "retrieved_em") if k in point}
        | {"questions": point.get("held_in_questions", held)},
    }
    write_card(folder, settings, metrics, command, int(point["questions"]), held)
    return folder


def write_card(folder: Path, settings: GenSettings, metrics: dict, command: str, trained: int, held: int) -> None:
    """rag-generator.json (how rag loads the model) and README.md (the model card)."""
    from rag.cpu import this_cpu
    from rag.generators.minilm import MARKER

    record = {
        "format": "rag-generator",
        "family": settings.family,
        "attention": settings.attention if settings.family != ENCODER_DECODER else "",
        "window": WINDOW,
        "max_new_tokens": MAX_NEW_TOKENS,
        "settings": {**settings.key(), "data": repo_relative(settings.data)},
        "metrics": metrics,
        "command": command,
        "cpu": this_cpu().model,
        "python": platform.python_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions_trained": trained,
        "questions_held_in": held,
    }
    (folder / MARKER).write_text(json.dumps(seal(record), indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")


def model_card(record: dict) -> str:
    from rag.train.reader_card import cooldown_lines, curve_point_lines

    s, m = record["settings"], record["metrics"]
    if record["family"] == ENCODER_DECODER:
        shape = (
            "an encoder-decoder: all-MiniLM-L6-v2's one body used as both encoder (bidirectional) and decoder "
            "(causal, reading the encoder through new cross-attention initialised from each layer's self-attention; "
            "Rothe et al. 2020's shared warm start)"
        )
    else:
        shape = (
            "a decoder-only model: all-MiniLM-L6-v2 run as one stack "
            + (
                "with a prefix-LM mask (the question and passage read bidirectionally, the answer causally; UniLM)"
                if record["attention"] == "prefix"
                else "with a causal mask throughout"
            )
            + ", its LM head tied to the word embeddings"
        )
    training = m.get("training", {})
    rate = training.get("examples_per_second")
    if rate is None and training.get("seconds"):
        rate = round(record["questions_trained"] / training["seconds"], 2)
    article = "An" if record["family"] == ENCODER_DECODER else "A"
    lines = [
        f"# {article} {record['family']} generator trained by rag from all-MiniLM-L6-v2",
        "",
        f"{shape[0].upper()}{shape[1:]}. It writes the answer token by token from `question [SEP] passage`.",
        "",
        "## Base model and data",
        f"- Base: {s['base']} (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0).",
        f"- Data: {Path(s['data']).name} (sha256 {s['data_sha256'][:16]}…): SQuAD v1.1 (Rajpurkar et al., 2016), CC BY-SA 4.0.",
        f"- {record['questions_trained']} questions trained on; held-in articles (never trained on): "
        f"{', '.join(s['held_in']) or 'none'}.",
        "",
        "## How it was trained",
        f"- Command: `{record['command']}`",
        f"- Seed {s['seed']}; {s['epochs']} epochs; lr {s['lr']} (new weights {s['new_lr']}; AdamW, weight decay "
        f"{s['weight_decay']}, warm-up {s['warmup']:.0%}, linear decay); batches of {s['batch_size']}, length-grouped;",
        f"  prompts of at most {s['max_input']} tokens (the passage cut around the answer where longer), answers of at "
        f"most {s['max_answer']}; the loss on the answer's tokens only.",
        f"- CPU: {record['cpu']}; {training.get('seconds', '?')} s, {rate if rate is not None else '?'} questions/s.",
        *curve_point_lines(record, "questions"),
        *cooldown_lines(s, m),
        "",
        "## Metrics",
    ]
    held = m.get("held_in")
    if held:
        lines += [
            f"On the {held['questions']} questions of the held-in articles (official SQuAD v1.1 F1/EM), greedy decoding:",
            f"- gold paragraph: F1 {held['gold_f1']}, EM {held['gold_em']}",
            f"- 5 retrieved passages (hybrid): F1 {held['retrieved_f1']}, EM {held['retrieved_em']}",
        ]
        if "held_in_int8" in m:
            q = m["held_in_int8"]
            lines.append(
                f"- weights stored in int8 (as shipped): gold F1 {q['gold_f1']}, retrieved F1 {q['retrieved_f1']}"
            )
    else:
        lines.append("No held-in articles (`--held-in 0`): no held-in numbers.")
    lines += ["", "## Licence", "Apache-2.0 (weights, as the base model); trained on CC BY-SA 4.0 data.", ""]
    return "\n".join(lines)
