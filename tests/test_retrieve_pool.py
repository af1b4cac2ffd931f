"""Hybrid fusion reads a fixed pool from each ranking, so asking for more passages only extends
the list: the top 5 of k=50 are the top 5 of k=5 (by hand, and on the shipped corpus)."""

from __future__ import annotations

import pytest

from rag.retrieve import Retriever, fuse, fusion_depth, rrf


def test_fuse_keeps_the_pool_fixed_by_hand():
    # dense: 1 2 3 4 5 6; bm25: 7 8 9 10 11 1. With a pool of 2, id 1 is only in the dense pool.
    dense, lexical = [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 1]
    how = Retriever(kind="hybrid", pool=2, rrf_k=1.0, bm25_weight=1.0)
    head = rrf([dense[:2], lexical[:2]], 1.0, (1.0, 1.0))  # 1, 7 (1/2 each), then 2, 8 (1/3 each)
    assert [i for i, _ in head] == [1, 7, 2, 8]
    assert fuse(dense, lexical, 2, how) == head[:2]
    # k = 6 needs more than the pool's 4 ids: the fusion of the top 4 adds its new ids after them
    # (3, 9 at 1/4 each, then 4, 10 at 1/5) and the head keeps its order and scores. Fusing the top
    # 6 directly would put 1 (1/2 + 1/7) above 7 and change the head's scores.
    six = fuse(dense, lexical, 6, how)
    assert six[:4] == head
    assert [i for i, _ in six] == [1, 7, 2, 8, 3, 9]
    assert dict(six)[3] == pytest.approx(1 / 4)
    assert dict(rrf([dense, lexical], 1.0, (1.0, 1.0)))[1] == pytest.approx(1 / 2 + 1 / 7)  # what it avoids
    for k in range(1, 12):  # every k is a prefix of a larger one
        assert fuse(dense, lexical, k, how) == fuse(dense, lexical, 11, how)[:k]
    assert len(fuse(dense, lexical, 50, how)) == 11  # all distinct ids, no more


def test_fusion_depth_is_the_pool_doubled_until_it_reaches_k():
    assert [fusion_depth(k, 50) for k in (1, 5, 50, 51, 100, 101, 350)] == [50, 50, 50, 100, 100, 200, 400]
    assert fusion_depth(5, 3) == 6


def test_top_5_of_k_5_and_of_k_50_agree(corpus_index, qa_items, monkeypatch):
    """Before the pool was fixed, it was max(k, pool): with a pool of 3 or 10, k = 50 read 50 ids
    of each ranking and fused them, which reordered the top 5 for most of these questions.
    (The shipped corpus, indexed once per session; `search_many` is `search`, batched.)"""
    assert len(corpus_index) > 50  # k = 50 really reaches past every pool here
    questions = [item["question"] for item in qa_items]
    vectors = corpus_index.embed_queries(questions)  # the same for every search below: encode once
    monkeypatch.setattr(
        corpus_index,
        "embed_queries",
        lambda queries, progress=False: vectors if list(queries) == questions else pytest.fail("other queries"),
    )
    for pool in (3, 10, 50):
        how = Retriever(kind="hybrid", pool=pool)
        fives = corpus_index.search_many(questions, 5, retriever=how)
        fifties = corpus_index.search_many(questions, 50, retriever=how)
        for item, five, fifty in zip(qa_items, fives, fifties):
            assert len(five) == 5 and len(fifty) == 50
            assert [(p.chunk_id, p.score) for p in fifty[:5]] == [(p.chunk_id, p.score) for p in five], (
                pool,
                item["id"],
            )
    monkeypatch.undo()
    assert corpus_index.search(questions[0], 5, retriever=how) == fives[0]  # one at a time, as `rag search` asks
