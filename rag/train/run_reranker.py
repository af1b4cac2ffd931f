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
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RerankRun:
    from rag.outdir import claim_out

    data = Path(data)
    train_set, held = split_for_training(data, settings, held_in, say)
    claim_out(out, "train")
    hybrid, dense = rankings_for(data, [*train_set, *held], ("hybrid", "dense"), progress, say)
    groups = mine_groups(train_set, [hybrid, dense], settings.group, settings.held_in, settings.seed)
    say(f"{len(groups)} training groups of 1 positive and {settings.group - 1} hard negatives")
    result = train(groups, out, settings, threads=threads, progress=progress, stop_after=stop_after, say=say)
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
