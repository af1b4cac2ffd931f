"""The whole of `rag train reranker`: data, split by article, hard negatives mined with rag's own
index, training, held-in evaluation (fused with the retriever, over several pools), ONNX export,
and a model folder with its card.

The held-in articles are the reader's (the same seeded split), so the two models' held-in
questions are the same and neither has seen their text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.train.checkpoints import MODEL_DIR
from rag.train.data import Example
from rag.train.mined import cached_groups
from rag.train.reranker import RerankSettings, mine_groups, train
from rag.train.run_reader import DEFAULT_DATA, split_for_training

__all__ = ["DEFAULT_DATA", "RerankRun", "rankings_for", "train_reranker"]

DEFAULT_HELD_IN = 4
DEPTH = 30  # passages retrieved per question: hard negatives are drawn from the top, evaluation reranks up to 30


@dataclass
class RerankRun:
    folder: Path
    finished: bool
    metrics: dict
    train_seconds: float
    pairs_per_second: float


def rankings_for(
    data: Path, questions: Sequence[Example], kinds: Sequence[str], progress: bool, say: Callable[[str], None]
) -> list[dict[str, list]]:
    """Per retriever kind, each question's top `DEPTH` passages from rag's index of the data's
    paragraphs, built or reused as `rag bench` builds it."""
    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.retrieve import Retriever

    _, index, info = dataset_index(BenchConfig(dataset=data, progress=progress, echo=say, warn=say))
    texts = [q.question for q in questions]
    out = []
    for kind in kinds:
        say(f"retrieving {DEPTH} passages ({kind}) for {len(questions)} questions from {info['path']}")
        found = index.search_many(texts, DEPTH, retriever=Retriever(kind))
        out.append({q.id: passages for q, passages in zip(questions, found)})
    return out


def train_reranker(
    data: Path,
    out: Path,
    settings: RerankSettings,
    *,
    held_in: int = DEFAULT_HELD_IN,
    threads: int | None = None,
    progress: bool = True,
    command: str = "",
    stop_after: int | None = None,
    export: bool = True,
    curve: Sequence[int] = (),
    from_run: Path | None = None,
    finish_at: int | None = None,
    checkpoint_seconds: float | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RerankRun:
    """`curve`, `from_run` and `finish_at` as for the reader (`rag.train.run_reader.train_reader`);
    a curve point reranks each held-in question's top hybrid chunks as rag does by default."""
    from rag.outdir import claim_out
    from rag.train.checkpoints import branch

    data = Path(data)
    train_set, held = split_for_training(data, settings, held_in, say)
    claim_out(out, "train")
    if from_run is not None:
        settings.cooldown = branch(Path(from_run), out, finish_at, settings, say)
    groups = run_groups(data, out, train_set, settings, progress, say)
    hybrid = rankings_for(data, held, ("hybrid",), progress, say)[0] if held else {}
    say(f"{len(groups)} training groups of 1 positive and {settings.group - 1} hard negatives")
    at_point = curve_point(out, held, hybrid, threads, progress, say) if curve and held else None
    result = train(
        groups,
        out,
        settings,
        threads=threads,
        progress=progress,
        stop_after=stop_after,
        curve=curve,
        at_point=at_point,
        say=say,
        **({} if checkpoint_seconds is None else {"checkpoint_seconds": checkpoint_seconds}),
    )
    finished = (out / MODEL_DIR).is_dir() and stop_after is None
    if not finished:
        return RerankRun(out / MODEL_DIR, False, {}, result.seconds, result.pairs_per_second)
    metrics: dict = {
        "training": {
            "groups": result.groups,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "pairs_per_second": round(result.pairs_per_second, 2),
            "resumed_from_step": result.resumed_from,
        }
    }
    from rag.rerankers.evaluate import held_in_metrics, write_card

    folder = out / MODEL_DIR
    if held:
        metrics["held_in"] = held_in_metrics(str(folder), held, hybrid, "torch", threads, progress)
        say(f"held-in: {json.dumps(metrics['held_in'])}")
    write_card(folder, settings, metrics, command, len(groups), len(held))
    if export:
        from rag.rerankers.export import export_reranker

        export_reranker(folder, say=say)
        if held:
            metrics["held_in_int8"] = held_in_metrics(str(folder), held, hybrid, "onnx", threads, progress)
            say(f"held-in, int8 ONNX: {json.dumps(metrics['held_in_int8'])}")
            write_card(folder, settings, metrics, command, len(groups), len(held))
    return RerankRun(folder, True, metrics, result.seconds, result.pairs_per_second)


def run_groups(
    data: Path, out: Path, train_set: Sequence[Example], settings, progress: bool, say: Callable[[str], None]
) -> list:
    """The run's training groups: mined once with rag's hybrid and dense retrievers and kept in
    out/groups.json (`rag.train.mined`); the rankings (gigabytes on the whole training set) are
    not kept past mining."""
    return cached_groups(
        out,
        mining_key(settings, len(train_set)),
        lambda: mine_groups(
            train_set,
            rankings_for(data, train_set, ("hybrid", "dense"), progress, say),
            settings.group,
            settings.held_in,
            settings.seed,
        ),
        say,
    )


def mining_key(settings, questions: int) -> dict:
    """What a run's mined groups depend on (beside the index, which the cache makes irrelevant)."""
    return {
        "data_sha256": settings.data_sha256,
        "held_in": list(settings.held_in),
        "group": settings.group,
        "seed": settings.seed,
        "questions": questions,
    }


def curve_point(out: Path, held: Sequence[Example], ranked: dict[str, list], threads, progress: bool, say) -> Callable:
    """The learning curve's evaluation at a checkpoint: the live model kept as out/curve/<N>q, the
    held-in questions' top hybrid chunks reranked as rag reranks by default (pool, fusion), recall@1,
    recall@5 and MRR@10 beside the retriever's; one line in out/curve.jsonl (a recorded point is not redone)."""
    import time

    from rag.config import DEFAULT_RERANK_C, DEFAULT_RERANK_POOL, DEFAULT_RERANK_WEIGHT
    from rag.rerankers.evaluate import mean_scores, ranking_scores
    from rag.rerankers.fusion import rerank_order
    from rag.rerankers.loading import load_reranker
    from rag.train.checkpoints import save_model
    from rag.train.run_reader import record_point, recorded_points

    questions = [q for q in held if ranked.get(q.id)]

    def at_point(n: int, clock: dict, model, tokenizer) -> None:
        if n in recorded_points(out):
            return
        say(f"learning curve: {n} questions seen (step {clock['step']}): reranking {len(questions)} held-in")
        started = time.monotonic()
        keep = out / "curve" / f"{n}q"
        keep.parent.mkdir(exist_ok=True)
        save_model(model, tokenizer, keep)
        reranker = load_reranker(str(keep), backend="torch", threads=threads)
        items = questions
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(questions, desc=f"held-in at {n}q", unit="q")
        rows, base = [], []
        for q in items:
            passages = ranked[q.id]
            scores = reranker.score(q.question, [p.text for p in passages[:DEFAULT_RERANK_POOL]])
            order = rerank_order(scores, len(passages), DEFAULT_RERANK_WEIGHT, DEFAULT_RERANK_C)
            rows.append(ranking_scores([passages[i].doc_path for i in order], q.doc))
            base.append(ranking_scores([p.doc_path for p in passages], q.doc))
        model.train()
        record = {
            "questions": n,
            "step": clock["step"],
            "train_seconds": round(clock["seconds"], 2),
            "train_cpu_seconds": round(clock["cpu_seconds"], 2),
            "reranked": mean_scores(rows),
            "retriever": mean_scores(base),
            "held_in_questions": len(questions),
            "eval_seconds": round(time.monotonic() - started, 1),
            "model": str(keep.relative_to(out)),
        }
        record_point(out, record, say)

    return at_point
