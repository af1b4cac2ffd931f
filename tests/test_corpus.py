"""The shipped corpus: its QA file is sound, and the retriever finds the gold document."""

from __future__ import annotations

import re

from conftest import CORPUS


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.lower())


def test_qa_file_is_sound(qa_items):
    docs = {p.name for p in (CORPUS / "docs").glob("*.md")}
    assert len(docs) >= 25 and len(qa_items) >= 60
    assert len({q["id"] for q in qa_items}) == len(qa_items)
    for q in qa_items:
        assert set(q) == {"id", "question", "answer", "aliases", "doc"}
        assert q["doc"] in docs, q
        text = _norm((CORPUS / "docs" / q["doc"]).read_text(encoding="utf-8"))
        assert any(_norm(a) in text for a in [q["answer"], *q["aliases"]]), q  # the answer really is in the text


def test_gold_document_in_top5_for_90_percent(corpus_index, qa_items):
    results = corpus_index.search_many([q["question"] for q in qa_items], k=5)
    hits = [q["doc"] in {p.doc_path for p in passages} for q, passages in zip(qa_items, results)]
    recall = sum(hits) / len(hits)
    print(f"\nrecall@5 of the gold document on {len(hits)} shipped questions: {recall:.3f}")
    assert recall >= 0.90
