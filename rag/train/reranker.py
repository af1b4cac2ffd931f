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
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.train.checkpoints import (
    CHECKPOINT,
    CHECKPOINT_SECONDS,
    MODEL_DIR,
    batch_order,
    load_optimizer,
    load_rng,
    lr_at,
    progress_bar,
    read_state,
    recover_checkpoint,
    save_checkpoint,
    save_model,
)

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

    def key(self) -> dict:
        return asdict(self)


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


def encode_groups(tokenizer, groups: Sequence[Group], max_length: int) -> list[list[list[int]]]:
    """Per group, each pair's token ids (question first; the passage cut to fit)."""
    out = []
    for g in groups:
        enc = tokenizer([g.question] * len(g.passages), g.passages, truncation="only_second", max_length=max_length)
        out.append(enc["input_ids"])
    return out


def pad_pairs(sequences: Sequence[Sequence[int]], pad_id: int, sep_id: int) -> dict:
    """input_ids, attention_mask and token_type_ids (0 up to the first [SEP], 1 after), padded to the longest."""
    import numpy as np

    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, s in enumerate(sequences):
        ids[row, : len(s)] = s
        mask[row, : len(s)] = 1
        first = s.index(sep_id) + 1 if sep_id in s else len(s)
        types[row, first : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def fingerprint(encoded: Sequence[Sequence[Sequence[int]]]) -> str:
    h = hashlib.sha256()
    for group in encoded:
        h.update(json.dumps(group).encode())
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
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> RerankResult:
    """Train (or resume) into `out` (claimed by the caller); the model folder is `out/model`.
    `stop_after` stops after that many steps in this call (tests)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rag.readers.backends import forward_inputs
    from rag.train.reader import base_folder

    if settings.loss not in LOSSES:
        raise RagError(f"--loss {settings.loss!r}: use one of {', '.join(LOSSES)}")
    if not groups:
        raise RagError("no training questions with a positive and enough hard negatives: check --data")
    if threads:
        torch.set_num_threads(threads)
    source = base_folder(settings.base)
    recover_checkpoint(out)
    state = read_state(out / CHECKPOINT)
    if state is not None and state["settings"] != settings.key():
        changed = sorted(k for k, v in settings.key().items() if state["settings"].get(k) != v)
        raise RagError(
            f"{out} holds a training run with other settings ({', '.join(changed)}): "
            "resume it with the same ones, or give another --out"
        )
    start_from = out / CHECKPOINT if state is not None else Path(source)
    torch.manual_seed(settings.seed)  # before loading: the new head's initial weights are drawn there
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(start_from), num_labels=1)
    except OSError as e:
        raise RagError(f"cannot load base model {settings.base!r}: {str(e).splitlines()[0]}") from None
    model.train()

    encoded = encode_groups(tokenizer, groups, settings.max_length)
    print_ = fingerprint(encoded)
    if state is not None and state.get("data") not in (None, print_):
        raise RagError(
            f"{out} was trained on other groups than these (the data or the mined negatives changed): "
            "resume it with the same data and index, or give another --out"
        )
    lengths = [max(len(s) for s in g) for g in encoded]
    per_epoch = math.ceil(len(encoded) / settings.batch_size)
    total = max(1, int(per_epoch * settings.epochs))
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    step = 0
    if state is not None:
        step = int(state["step"])
        try:
            load_optimizer(optimizer, out / CHECKPOINT)
            torch.set_rng_state(load_rng(out / CHECKPOINT))
        except Exception as e:  # noqa: BLE001 - a damaged file: say which, and the way out
            raise RagError(
                f"{out / CHECKPOINT} is damaged ({str(e).splitlines()[0][:120]}): remove that folder "
                "to start this run over (the rest of --out is kept)"
            ) from None
        say(f"resuming {out} at step {step} of {total}")
    resumed_from = step
    before_seconds = float(state.get("seconds", 0.0)) if state else 0.0
    before_seen = int(state.get("windows_seen", 0)) if state else 0

    bar = progress_bar(total, step, progress)
    last_save = time.monotonic()
    started = time.monotonic()
    seen = 0
    inputs = forward_inputs(model)
    pad_id, sep_id = tokenizer.pad_token_id or 0, tokenizer.sep_token_id
    log = (out / "train-log.jsonl").open("a", encoding="utf-8")
    try:
        while step < total:
            epoch, index = divmod(step, per_epoch)
            batches = batch_order(lengths, settings.batch_size, settings.seed * 1000 + epoch)
            for ids in batches[index:]:
                if step >= total:
                    break
                sequences = [s for i in ids for s in encoded[i]]
                arrays = pad_pairs(sequences, pad_id, sep_id)
                feeds = {k: torch.from_numpy(v) for k, v in arrays.items() if k in inputs}
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, settings)
                logits = model(**feeds).logits.view(len(ids), settings.group)
                loss = group_loss(logits, settings)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += len(sequences)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", epoch=f"{step / per_epoch:.2f}")
                if step % 25 == 0 or step == total:
                    elapsed = time.monotonic() - started
                    record = {"step": step, "loss": round(loss.item(), 4), "lr": lr_at(step - 1, total, settings)}
                    log.write(json.dumps({**record, "pairs_per_s": round(seen / elapsed, 2)}) + "\n")
                    log.flush()
                end_of_epoch = step % per_epoch == 0
                if end_of_epoch or step == total or time.monotonic() - last_save >= checkpoint_seconds:
                    save_checkpoint(
                        model,
                        optimizer,
                        out,
                        step,
                        settings,
                        print_,
                        before_seconds + time.monotonic() - started,
                        before_seen + seen,
                    )
                    last_save = time.monotonic()
                if stop_after is not None and step - resumed_from >= stop_after:
                    break
            if stop_after is not None and step - resumed_from >= stop_after:
                break
    finally:
        bar.close()
        log.close()
    seconds = before_seconds + (time.monotonic() - started if step > resumed_from else 0.0)
    seen += before_seen
    result = RerankResult(out / MODEL_DIR, step, seconds, seen / max(seconds, 1e-9), len(encoded), resumed_from)
    if step >= total and (step > resumed_from or not (out / MODEL_DIR).is_dir()):
        save_model(model, tokenizer, out / MODEL_DIR)
    return result


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
