"""Training examples for a span reader: SQuAD v1.1 JSON or rag's QA JSONL, and the split by article.

A QA example is a question, the passage that holds its answer and where the answer starts in
it. SQuAD gives the character offset; rag's QA JSONL gives the answer text and its document,
so the answer is located there (first exact occurrence, else first case-insensitive one).
The held-in split is by article (SQuAD title, or JSONL document), never by question: questions
on one article share its wording, so a split by question would leak.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError


@dataclass
class Example:
    """One training or evaluation question with its gold passage."""

    id: str
    question: str
    context: str
    answer_start: int
    answer: str  # the text at answer_start: the training label
    answers: list[str]  # every gold answer, for scoring
    article: str  # the unit of the split
    doc: str  # the passage's document id ("<title>/<paragraph>" for SQuAD, as `rag bench` names it)
    negatives: list[str] = field(default_factory=list)  # passages without the answer (multi-passage training)


def load_examples(path: str | Path) -> list[Example]:
    """Examples from a SQuAD v1.1 .json file or a rag QA .jsonl file (with its docs folder)."""
    from rag.bench.datasets import detect_format

    path = Path(path)
    if not path.exists():
        raise RagError(f"{path}: no such file: give a SQuAD v1.1 .json file or a rag QA .jsonl file")
    try:
        kind = detect_format(path)
    except ValueError as e:
        raise RagError(str(e)) from None
    if kind == "squad":
        return _squad(path)
    if kind == "qa-jsonl":
        return _qa_jsonl(path)
    raise RagError(f"{path}: a {kind} set has no answers to train a reader on: give SQuAD JSON or rag QA JSONL")


def _squad(path: Path) -> list[Example]:
    from rag.bench.datasets import load_squad

    try:
        load_squad(path)  # checks the file's shape, naming the first bad record
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RagError(str(e)) from None
    out = []
    for article in data["data"]:
        title = article["title"].replace("/", "_")
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                first = qa["answers"][0]
                start, text = int(first["answer_start"]), first["text"]
                if context[start : start + len(text)] != text:  # a few SQuAD offsets are off by one or two
                    found = context.find(text, max(0, start - 5))
                    start = found if found >= 0 else context.find(text)
                    if start < 0:
                        continue
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                out.append(Example(qa["id"], qa["question"], context, start, text, answers, title, f"{title}/{p}"))
    return out


def _qa_jsonl(path: Path) -> list[Example]:
    from rag.bench.answering import document_texts
    from rag.bench.datasets import load_qa_jsonl

    bench = load_qa_jsonl(path)
    text_of = document_texts(bench)
    out = []
    for q in bench.questions:
        doc = next(iter(q.gold), None)
        context = text_of(doc) if doc else ""
        for answer in q.answers:
            found = re.search(re.escape(answer), context) or re.search(re.escape(answer), context, re.IGNORECASE)
            if found and found.group():
                out.append(Example(q.id, q.question, context, found.start(), found.group(), q.answers, doc, doc))
                break
    if not out:
        raise RagError(
            f"{path}: no answer was found in its document: a reader needs answers that are spans of the text"
        )
    return out


def split_by_article(examples: Sequence[Example], held_in: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held-in): `held_in` whole articles, chosen by a seeded shuffle of their sorted names."""
    articles = sorted({e.article for e in examples})
    if held_in <= 0:
        return list(examples), []
    if held_in >= len(articles):
        raise RagError(f"--held-in {held_in}: the data has only {len(articles)} articles; hold in fewer")
    random.Random(seed).shuffle(articles)
    chosen = set(articles[:held_in])
    return [e for e in examples if e.article not in chosen], [e for e in examples if e.article in chosen]
