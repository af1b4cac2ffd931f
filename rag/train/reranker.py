"""`rag train reranker`: fine-tune an encoder as a cross-encoder on (question, passage) groups.

Each training question brings a group: one positive (a chunk of its gold paragraph that holds
the answer) and `group - 1` hard negatives (chunks rag's own hybrid and dense retrievers rank
high that do not hold it; see `mine_groups`). The encoder reads question and passage together
([CLS] q [SEP] p [SEP]) and a one-logit head scores the pair. The loss is chosen per run:
`listwise` (softmax cross-entropy over the group, the positive as the class: the negatives compete
with the positive for the same question, which is what a reranker's order needs) or `bce`
(each pair alone, binary cross-entropy with the positives weighted by the negatives per group).

Not sentence-transformers' CrossEncoderTrainer: its checkpoints are pickles (optimizer.pt,
rng_state.pth, training_args.bin) and rag keeps none on disk. The loop, batches and checkpoints
are the reader's (`rag.train.checkpoints`); the saved model is an ordinary
AutoModelForSequenceClassification with one label, which `sentence_transformers.CrossEncoder`
loads as it is.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.train.checkpoints import CHECKPOINT_SECONDS, MODEL_DIR
from rag.train.loop import curve_steps, open_run, train_loop

LOSSES = ("listwise", "bce")
MAX_LENGTH = 256  # question + a 200-token chunk fits; longer passages are cut at the end


@dataclass
class RerankSettings:
    """What a reranker run depends on; a resumed run must have the same (checked)."""

    base: str = "all-MiniLM-L6-v2"
    epochs: float = 1.0
    lr: float = 5e-5
    batch_size: int = 8  # questions per step; each brings its whole group
    group: int = 4  # passages per question: one positive and group - 1 hard negatives
    loss: str = "listwise"
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = MAX_LENGTH
    seed: int = 0
    data: str = ""
    data_sha256: str = ""
    held_in: list[str] = field(default_factory=list)
    cooldown: dict | None = None  # see rag.train.loop.schedule; absent from an ordinary run's key

    def key(self) -> dict:
        key = asdict(self)
        if key["cooldown"] is None:
            key.pop("cooldown")
        return key


@dataclass
class Group:
    """One training question: its positive passage first, then its hard negatives."""

    question: str
    passages: list[str]


@dataclass
class RerankResult:
    folder: Path
    steps: int
    seconds: float
    pairs_per_second: float
    groups: int
    resumed_from: int = 0


def encode_groups(tokenizer, groups: Sequence[Group], max_length: int) -> list[dict[str, list[list[int]]]]:
    """Per group, each pair's input_ids and token_type_ids as the tokenizer makes them (question
    first; the passage cut to fit)."""
    out = []
    for g in groups:
        enc = tokenizer([g.question] * len(g.passages), g.passages, truncation="only_second", max_length=max_length)
        out.append({"input_ids": enc["input_ids"], "token_type_ids": enc.get("token_type_ids")})
    return out


def fingerprint(encoded: Sequence[dict]) -> str:
    """A hash of every pair's tokens, group by group: a resumed run must replay the same batches."""
    h = hashlib.sha256()
    for group in encoded:
        h.update(json.dumps(group["input_ids"]).encode())
    return h.hexdigest()[:16]


def group_loss(logits, settings: RerankSettings):
    """The loss of a batch of groups; `logits` is (questions, group) with the positive in column 0."""
    import torch

    if settings.loss == "listwise":
        return torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    weight = torch.tensor(float(logits.shape[1] - 1))
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)


def train(
    groups: Sequence[Group],
    out: Path,
    settings: RerankSettings,
    *,
    threads: int | None = None,
    progress: bool = True,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    stop_after: int | None = None,
    curve: Sequence[int] = (),
    at_point: Callable[[int, dict, object, object], None] | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RerankResult:
    """Train (or resume) into `out` (claimed with `rag.outdir.claim_out`); the model folder is `out/model`.
    `stop_after` stops after that many steps in this call (tests). `curve`: numbers of questions
    (one group each) at which `at_point(questions, clock, model, tokenizer)` evaluates the live model."""
    import torch

    from rag.models.batch import pad_rows
    from rag.readers.backends import forward_inputs
    from rag.train.reader import base_folder

    if settings.loss not in LOSSES:
        raise RagError(f"--loss {settings.loss!r}: use one of {', '.join(LOSSES)}")
    if not groups:
        raise RagError("no training questions with a positive and enough hard negatives: check --data")
    source = base_folder(settings.base)
    run = open_run(out, settings, source, "AutoModelForSequenceClassification", threads, say, num_labels=1)
    tokenizer, model = run.tokenizer, run.model
    encoded = encode_groups(tokenizer, groups, settings.max_length)
    inputs = forward_inputs(model)
    pad_id = tokenizer.pad_token_id or 0

    def batch_loss(ids: list[int]):
        rows = [row for i in ids for row in encoded[i]["input_ids"]]
        types = [kinds for i in ids for kinds in (encoded[i]["token_type_ids"] or [None] * settings.group)]
        feeds = {k: torch.from_numpy(v) for k, v in pad_rows(rows, types, pad_id).items() if k in inputs}
        logits = model(**feeds).logits.view(len(ids), settings.group)
        return group_loss(logits, settings), len(rows)

    import math

    points = curve_steps(curve, len(encoded), settings.batch_size, settings.epochs) if at_point is not None else {}
    finish_step = math.ceil(settings.cooldown["questions"] / settings.batch_size) if settings.cooldown else None

    def at_milestone(step: int, clock: dict) -> None:
        at_point(points[step], {**clock, "step": step}, model, tokenizer)

    result = train_loop(
        run,
        settings,
        lengths=[max(len(row) for row in g["input_ids"]) for g in encoded],
        fingerprint=fingerprint(encoded),
        batch_loss=batch_loss,
        mismatch="groups than these (the data or the mined negatives changed)",
        rate="pairs_per_s",
        log_every=25,
        progress=progress,
        checkpoint_seconds=checkpoint_seconds,
        stop_after=stop_after,
        milestones=sorted(points),
        at_milestone=at_milestone if points else None,
        finish_step=finish_step,
        say=say,
    )
    return RerankResult(
        out / MODEL_DIR,
        result.steps,
        result.seconds,
        result.seen / max(result.seconds, 1e-9),
        len(encoded),
        result.resumed_from,
    )


def mine_groups(
    examples: Sequence,
    rankings: Sequence[dict[str, list]],
    group: int,
    held_in: Sequence[str] = (),
    seed: int = 0,
    depth: int = 12,
) -> list[Group]:
    """One group per example that has a positive and `group - 1` hard negatives.

    `rankings` are retrievers' passages per question id (hybrid and dense), read in turn
    (first of each, second of each, ...). The positive is the first retrieved chunk of the gold
    paragraph holding an answer, else the gold paragraph itself. Negatives are drawn (seeded)
    from the first `depth` retrieved chunks that are not from the gold paragraph, hold none of
    the answers (as SQuAD normalises them) and are not from a held-in article, whose text must
    stay unseen. A question without enough of them is left out.
    """
    from rag.train.run_reader import article_of

    rng = random.Random(seed)
    held = set(held_in)
    out = []
    for e in examples:
        merged, seen = [], set()
        for row in zip(*(r.get(e.id, []) for r in rankings)):
            for p in row:
                if p.chunk_id not in seen:
                    seen.add(p.chunk_id)
                    merged.append(p)
        positive = next((p.text for p in merged if p.doc_path == e.doc and mentions(p.text, e.answers)), None)
        if positive is None:
            positive = e.context
        pool = [
            p.text
            for p in merged
            if p.doc_path != e.doc and not mentions(p.text, e.answers) and article_of(p.doc_path, held) is None
        ][:depth]
        if len(pool) < group - 1:
            continue
        out.append(Group(e.question, [positive, *rng.sample(pool, group - 1)]))
    return out


def mentions(text: str, answers: Sequence[str]) -> bool:
    """Whether `text` holds an answer, as SQuAD normalises both, or as words in any case ("Eiffel"
    in "Eiffel's", which normalising turns into "eiffels"): a negative must not answer the question."""
    import re

    from rag.train.run_reader import holds_answer

    if holds_answer(text, answers):
        return True
    return any(re.search(rf"(?<!\w){re.escape(a.strip())}(?!\w)", text, re.IGNORECASE) for a in answers if a.strip())
