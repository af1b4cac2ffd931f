"""The passages rag's own retriever returns for training and held-in questions: retrieved once
per run and kept in the run folder (`retrieval.json`), so a run continued in another session
trains on the very same no-answer passages; and the rules that make a retrieved passage a
no-answer one (not the question's paragraph, not holding an answer, not from a held-in article).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.metrics import normalize_answer
from rag.train.data import Example


def retrieval_for(
    data: Path, questions: Sequence[Example], depth: int, progress: bool, say: Callable[[str], None]
) -> dict[str, list]:
    """Each question's ranked passages (hybrid retrieval) from rag's index of the data's paragraphs,
    built or reused as `rag bench` builds it."""
    from rag.bench.config import BenchConfig
    from rag.bench.corpus import dataset_index
    from rag.retrieve import Retriever

    _, index, info = dataset_index(BenchConfig(dataset=data, progress=progress, echo=say, warn=say))
    say(f"retrieving {depth} passages for {len(questions)} questions from {info['path']}")
    found = []
    batch = 2000
    bar = None
    if progress and len(questions) > batch:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(questions), desc="retrieving", unit="q", dynamic_ncols=True)
    for i in range(0, len(questions), batch):
        part = questions[i : i + batch]
        found += index.search_many([q.question for q in part], depth, retriever=Retriever("hybrid"))
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    return {q.id: [Retrieved(p.doc_path, p.text) for p in passages] for q, passages in zip(questions, found)}


@dataclass
class Retrieved:
    """What training and held-in evaluation use of a retrieved passage."""

    doc_path: str
    text: str


RETRIEVAL = "retrieval.json"


def read_keyed(path: Path, key: dict, field: str, again: str, say: Callable[[str], None]):
    """`field` of the JSON file `path` if it was written under `key` (else None: absent, other
    key, or unreadable, said in one line ending in `again`)."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        say(f"{path} cannot be read ({str(e)[:80]}): {again}")
        return None
    if isinstance(cached, dict) and cached.get("key") == key:
        return cached.get(field)
    return None


def write_keyed(path: Path, key: dict, field: str, payload) -> None:
    """Write {"key": key, field: payload} to `path` whole (a temporary file moved into place)."""
    import os

    work = path.parent / f".{path.name}.tmp"
    work.write_text(json.dumps({"key": key, field: payload}), encoding="utf-8")
    os.replace(work, path)


def cached_retrieval(
    out: Path, key: dict, compute: Callable[[], dict[str, list]], say: Callable[[str], None]
) -> dict[str, list]:
    """The run's retrieved passages, computed once and kept in out/retrieval.json (key: the data's
    hash, the questions and the depth), so a resumed run trains on the very same no-answer passages
    even if the index was rebuilt meanwhile (its fingerprint check would refuse others)."""
    path = out / RETRIEVAL
    ranked = read_keyed(path, key, "ranked", "retrieving again", say)
    if isinstance(ranked, dict):
        try:
            return {qid: [Retrieved(d, t) for d, t in items] for qid, items in ranked.items()}
        except (TypeError, ValueError):
            say(f"{path} is damaged: retrieving again")
    ranked = compute()
    write_keyed(path, key, "ranked", {q: [[p.doc_path, p.text] for p in v] for q, v in ranked.items()})
    return ranked


def holds_answer(text: str, answers: Sequence[str]) -> bool:
    norm = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in norm for a in answers if normalize_answer(a))


def article_of(doc_path: str, articles: set[str]) -> str | None:
    """The article a retrieved document belongs to: a SQuAD "<title>/<n>" or a JSONL document itself."""
    if doc_path in articles:
        return doc_path
    head = doc_path.rsplit("/", 1)[0]
    return head if head in articles else None


def negatives_of(example: Example, passages: Sequence, held: set[str]) -> list:
    """The retrieved passages that may be trained on as no-answer for `example`, in rank order: not
    its paragraph, not holding any of its answers (hard negatives: what the retriever confuses with
    the answer) and not from a held-in article (whose text must stay unseen)."""
    return [
        p
        for p in passages
        if p.doc_path != example.doc
        and not holds_answer(p.text, example.answers)
        and article_of(p.doc_path, held) is None
    ]


def add_negatives(examples: Sequence[Example], ranked: dict[str, list], n: int, held_in: Sequence[str] = ()) -> int:
    """Give each example up to `n` of its `negatives_of` passages' texts. Returns how many."""
    held = set(held_in)
    count = 0
    for e in examples:
        e.negatives = [p.text for p in negatives_of(e, ranked.get(e.id, []), held)][:n]
        count += len(e.negatives)
    return count
