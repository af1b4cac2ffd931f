"""`rag train embedder`: fine-tune the bi-encoder that builds every index on question -> passage
pairs, so a user can tune it to their own documents.

Each training question brings a group (`rag.train.reranker.mine_groups`): the chunk of its gold
paragraph that holds the answer and hard negatives that rag's own hybrid and dense retrievers
rank high without holding it. Question and passages are embedded apart, as at search time
(mean pooling and L2 normalisation, sentence-transformers' modules), and the loss is the
multiple-negatives ranking loss (van den Oord et al. 2018; sentence-transformers'
MultipleNegativesRankingLoss): each question's positive against every passage in the batch,
positives and hard negatives of the other questions included, cosine similarities scaled by 20.

Not sentence-transformers' trainer: its checkpoints are pickles and rag keeps none on disk; the
loop, batches and checkpoints are the reader's (`rag.train.loop`), the loss is the same
arithmetic. On CPU memory is no limit at these sizes (a batch of 32 questions, 96 texts of at
most 256 tokens, trains in about 3 GB), so the loss is taken over the whole batch at once
rather than cached in chunks (GradCache), which only saves memory. The finished model is a
sentence-transformers folder (the base's modules, pooling and tokenizer with the new weights):
`--embedder FOLDER` loads it and gives it the same ONNX export as the packaged model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.train.checkpoints import CHECKPOINT_SECONDS, MODEL_DIR
from rag.train.loop import curve_steps, open_run, train_loop
from rag.train.reranker import Group

SCALE = 20.0  # sentence-transformers' default for cosine similarity in this loss


@dataclass
class EmbedSettings:
    """What an embedder run depends on; a resumed run must have the same (checked)."""

    base: str = "all-MiniLM-L6-v2"
    epochs: float = 1.0
    lr: float = 2e-5
    batch_size: int = 32  # questions per step, each with its positive and hard negatives
    group: int = 2  # passages per question: the positive and group - 1 hard negatives
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 256
    seed: int = 0
    data: str = ""
    data_sha256: str = ""
    held_in: list[str] = field(default_factory=list)
    cooldown: dict | None = None

    def key(self) -> dict:
        key = asdict(self)
        if key["cooldown"] is None:
            key.pop("cooldown")
        return key


@dataclass
class EmbedResult:
    folder: Path
    steps: int
    seconds: float
    questions_per_second: float
    groups: int
    resumed_from: int = 0


def mean_pooled(model, ids, mask):
    """Sentence embeddings as all-MiniLM-L6-v2 makes them: the mean of the token states, L2-normalised."""
    import torch

    states = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def ranking_loss(questions, passages, positives: Sequence[int]):
    """Multiple-negatives ranking loss: each question's positive passage (`positives[i]`, a row of
    `passages`) against every passage given."""
    import torch

    scores = questions @ passages.T * SCALE
    return torch.nn.functional.cross_entropy(scores, torch.tensor(list(positives)))


def train(
    groups: Sequence[Group],
    out: Path,
    settings: EmbedSettings,
    *,
    threads: int | None = None,
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    curve: Sequence[int] = (),
    at_point: Callable[[int, dict, object, object], None] | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> EmbedResult:
    """Train (or resume) into `out`; the sentence-transformers folder is `out/model`. `curve`:
    numbers of questions at which `at_point(questions, clock, model, tokenizer)` evaluates the live model."""

    import torch

    from rag.train.reader import base_folder

    base = Path(base_folder(settings.base))
    run = open_run(out, settings, str(base), "AutoModel", threads, say)
    tokenizer, model = run.tokenizer, run.model

    def encode(texts: list[str]):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=settings.max_length, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    def batch_loss(ids: list[int]):
        chosen = [groups[i] for i in ids]
        questions = mean_pooled(model, *encode([g.question for g in chosen]))
        texts = [g.passages[0] for g in chosen] + [p for g in chosen for p in g.passages[1:]]
        passages = mean_pooled(model, *encode(texts))
        return ranking_loss(questions, passages, range(len(chosen))), len(chosen)

    points = curve_steps(curve, len(groups), settings.batch_size, settings.epochs) if at_point is not None else {}

    def at_milestone(step: int, clock: dict) -> None:
        at_point(points[step], {**clock, "step": step}, model, tokenizer)

    result = train_loop(
        run,
        settings,
        lengths=[len(g.passages[0]) for g in groups],  # characters: length grouping needs only an order
        fingerprint=fingerprint(groups),
        batch_loss=batch_loss,
        mismatch="groups than these (the data or the mined negatives changed)",
        rate="questions_per_s",
        progress=progress,
        checkpoint_seconds=checkpoint_seconds,
        stop_after=stop_after,
        milestones=sorted(points),
        at_milestone=at_milestone if points else None,
        say=say,
    )
    folder = out / MODEL_DIR
    if folder.is_dir() and not (folder / "modules.json").is_file():
        with torch.no_grad():
            as_sentence_transformer(base, folder)
    return EmbedResult(folder, result.steps, result.seconds, result.seen / max(result.seconds, 1e-9), len(groups))


def as_sentence_transformer(base: Path, folder: Path) -> None:
    """Make `folder` (the trained transformer's weights and tokenizer) a sentence-transformers
    model: the base's module list, pooling, normalisation and settings beside the new weights."""
    for item in sorted(base.iterdir()):
        target = folder / item.name
        if item.is_dir() and not target.exists():
            shutil.copytree(item, target)
        elif item.is_file() and item.suffix == ".json" and item.name not in ("config.json",) and not target.exists():
            shutil.copyfile(item, target)


def fingerprint(groups: Sequence[Group]) -> str:
    h = hashlib.sha256()
    for g in groups:
        h.update(json.dumps([g.question, g.passages]).encode())
    return h.hexdigest()[:16]
