"""BM25 beside the dense index, hybrid fusion and MMR: rankings by hand, real indexes on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_docs

from rag import lexical, store
from rag.cli import main
from rag.errors import IndexError_, RagError
from rag.index import Index
from rag.retrieve import Retriever, mmr, rrf

# Dense retrieval matches meaning: a question about an error code lands on the documents that
# talk about error codes in general. Only one short document holds the exact code.
RARE = {
    "e1147.md": "E1147: the cooling fan stopped.\n",
    "messages.md": "An error message tells the user why something went wrong and how to fix it.\n",
    "disk.md": "Error codes such as E1417 mean that the disk is full.\n",
    "manual.md": "When an error occurs, the meaning of the error code is in the manual.\n",
}
RARE_QUESTION = "What does error E1147 mean?"


def build(folder: Path, index_dir: Path, embedder, **kw) -> Index:
    return Index.build(folder, index_dir, embedder=embedder, warn=lambda m: None, **kw)


@pytest.fixture
def rare_index(tmp_path, embedder) -> Index:
    return build(write_docs(tmp_path / "docs", RARE), tmp_path / "idx", embedder)


# --- fusion and diversity by hand --------------------------------------------------------------


def test_rrf_sums_reciprocal_ranks():
    fused = rrf([[1, 2, 3], [3, 1, 4]], c=60)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62) and scores[4] == pytest.approx(1 / 63)
    # c = 0: the top ranks dominate (1 + 1/2 for item 1, 1/3 + 1 for item 3)
    assert dict(rrf([[1, 2, 3], [3, 1, 4]], c=0)) == pytest.approx({1: 1.5, 3: 4 / 3, 2: 0.5, 4: 1 / 3})
    # an item ranked by one list only still counts; equal sums go to the better single rank, then the id
    assert [i for i, _ in rrf([[7, 8], [8, 7]], c=60)] == [7, 8]
    assert [i for i, _ in rrf([[5], []], c=60)] == [5]
    assert rrf([[], []]) == []
    # weighted: the second ranking counts twice, so its top item wins
    weighted = rrf([[1, 2], [2, 1]], c=1, weights=[1.0, 2.0])
    assert [i for i, _ in weighted] == [2, 1]
    assert dict(weighted) == pytest.approx({2: 1 / 3 + 2 / 2, 1: 1 / 2 + 2 / 3})


def test_mmr_skips_near_duplicates():
    def unit(v):
        v = np.asarray(v, dtype=np.float32)
        return v / np.linalg.norm(v)

    query = unit([1, 0, 0])
    a, a_twin, b = unit([1, 0.05, 0]), unit([1, 0.06, 0.01]), unit([0.6, 0, 0.8])
    candidates = np.stack([a, a_twin, b])
    relevance = candidates @ query
    assert mmr(relevance, candidates, 3, lam=1.0) == [0, 1, 2]  # relevance only
    assert mmr(relevance, candidates, 2, lam=0.5) == [0, 2]  # the twin is redundant with the first pick
    assert mmr(relevance[:0], candidates[:0], 3, lam=0.5) == []
    # relevance need not be a cosine: a lexical ranking's order leads, diversity still applies
    assert mmr(np.array([0.2, 1.0, 0.9]), candidates, 2, lam=0.5) == [1, 2]


def test_retriever_settings_are_checked():
    with pytest.raises(RagError, match="unknown retriever 'sparse'"):
        Retriever(kind="sparse")
    with pytest.raises(RagError, match="--mmr takes a lambda between 0 and 1, got 1.5"):
        Retriever(mmr=1.5)
    with pytest.raises(RagError, match="--pool must be at least 1"):
        Retriever(kind="hybrid", pool=0)
    with pytest.raises(RagError, match="--bm25-weight must be 0 or more"):
        Retriever(kind="hybrid", bm25_weight=-1)
    assert (
        Retriever(kind="hybrid", pool=20, rrf_k=10, bm25_weight=2).describe()
        == "hybrid (RRF c=10, BM25 weight 2, pool 20)"
    )


# --- real indexes -------------------------------------------------------------------------------


def test_bm25_finds_an_exact_rare_term_that_dense_misses(rare_index):
    dense = rare_index.search(RARE_QUESTION, k=2, retriever="dense")
    bm25 = rare_index.search(RARE_QUESTION, k=3, retriever="bm25")
    hybrid = rare_index.search(RARE_QUESTION, k=2, retriever="hybrid")
    assert "e1147.md" not in {p.doc_path for p in dense}  # the index has 4 chunks; dense's top 2 miss it
    assert bm25[0].doc_path == "e1147.md" and hybrid[0].doc_path == "e1147.md"
    # BM25's ranking and scores are those of bm25s (Lucene's BM25), an independent implementation
    import bm25s

    texts = {p.chunk_id: p.text for p in rare_index.search(RARE_QUESTION, k=4, retriever="dense")}
    ids = sorted(texts)
    reference = bm25s.BM25(method="lucene", k1=lexical.K1, b=lexical.B)
    reference.index([lexical.tokenize(texts[i]) for i in ids], show_progress=False)
    rows, scores = reference.retrieve([lexical.tokenize(RARE_QUESTION)], k=3, show_progress=False)
    assert [(p.chunk_id, p.rank) for p in bm25] == [(ids[r], n) for n, r in enumerate(rows[0], start=1)]
    assert [p.score for p in bm25] == pytest.approx([float(s) for s in scores[0]], rel=1e-5)


def test_bm25_terms_are_stemmed_lowercased_and_stopword_free(rare_index):
    assert lexical.tokenize("Which Encoders were encoding 1802 a?") == ["encod", "encod", "1802"]
    [hit] = rare_index.search("Cooling FANS stopping", k=1, retriever="bm25")
    assert hit.doc_path == "e1147.md"
    assert rare_index.search("the of and", k=3, retriever="bm25") == []  # only stop words: nothing matches


def test_mmr_gives_distinct_passages(tmp_path, embedder):
    same = "Masked language modelling hides tokens and trains BERT to predict them from both sides. "
    docs = {"a.md": same, "b.md": same + "It is the same idea.", "c.md": "T5 casts every task as text to text."}
    index = build(write_docs(tmp_path / "d", docs), tmp_path / "i", embedder)
    plain = index.search("How is BERT trained?", k=2)
    diverse = index.search("How is BERT trained?", k=2, retriever=Retriever(mmr=0.3))
    assert {p.doc_path for p in plain} == {"a.md", "b.md"}
    assert diverse[0].doc_path == plain[0].doc_path and diverse[1].doc_path == "c.md"
    assert [p.rank for p in diverse] == [1, 2]


def test_mmr_keeps_the_hybrid_ranking_in_the_lead(rare_index):
    hybrid = rare_index.search(RARE_QUESTION, k=3, retriever="hybrid")
    diverse = rare_index.search(RARE_QUESTION, k=3, retriever=Retriever(kind="hybrid", mmr=0.7))
    assert hybrid[0].doc_path == diverse[0].doc_path == "e1147.md"  # dense would put another first
    # MMR picks among the pool's candidates only: with a pool of 3 the fourth chunk never appears
    narrow = rare_index.search(RARE_QUESTION, k=3, retriever=Retriever(kind="hybrid", pool=3, mmr=0.1))
    top3 = {p.chunk_id for p in rare_index.search(RARE_QUESTION, k=3, retriever="hybrid")}
    assert len(narrow) == 3 and {p.chunk_id for p in narrow} == top3 and len(rare_index) == 4
    # k above the pool: MMR chooses among max(k, pool) candidates, so k passages still come back
    wide = rare_index.search(RARE_QUESTION, k=4, retriever=Retriever(kind="hybrid", pool=2, mmr=0.5))
    assert len(wide) == 4


def test_incremental_update_keeps_bm25_in_step(tmp_path, embedder, merge_policy):
    folder = write_docs(tmp_path / "docs", RARE)
    idx = tmp_path / "idx"
    build(folder, idx, embedder)
    (folder / "disk.md").unlink()
    (folder / "manual.md").write_text("Quillonby wrote the manual of the mill in 1911.\n")
    write_docs(folder, {"new.md": "Zephyrine Oduya mapped the river delta by canoe.\n"})
    index = build(folder, idx, embedder)
    assert (index.build_report.added, index.build_report.changed, index.build_report.removed) == (1, 1, 1)

    live = index.live_ids()
    assert sorted(index.generation.faiss_ids().tolist()) == live and index.verify() == []
    assert index.search("Zephyrine Oduya", k=1, retriever="bm25")[0].doc_path == "new.md"
    assert index.search("Quillonby", k=1, retriever="bm25")[0].doc_path == "manual.md"
    assert index.search("full disk E1417", k=5, retriever="bm25") == []  # the deleted document's words are gone
    assert index.search("occurs", k=5, retriever="bm25") == []  # and the changed one's old words


def test_failure_while_writing_bm25_leaves_previous_generation(tmp_path, embedder, monkeypatch):
    folder = write_docs(tmp_path / "docs", RARE)
    idx = tmp_path / "idx"
    build(folder, idx, embedder)
    (folder / "new.md").write_text("Something new about E1147.\n")

    def boom(*args, **kwargs):
        raise OSError("the disk said no")

    monkeypatch.setattr(lexical.Postings, "save", boom)
    with pytest.raises(OSError, match="the disk said no"):
        build(folder, idx, embedder)
    monkeypatch.undo()
    index = Index.load(idx)
    assert index.manifest.generation == 1 and index.documents() == sorted(RARE) and index.verify() == []
    assert index.search("Something new", k=1, retriever="bm25")[0].doc_path != "new.md"


def test_bm25_built_with_other_settings_is_refused_then_rebuilt(tmp_path, embedder):
    import sqlite3

    folder = write_docs(tmp_path / "docs", RARE)
    idx = tmp_path / "idx"
    build(folder, idx, embedder)
    db = sqlite3.connect(idx / store.META)
    manifest = json.loads(db.execute("SELECT manifest FROM generations").fetchone()[0])
    manifest["bm25"]["tokenizer"] = "some-older-tokenizer"
    db.execute("UPDATE generations SET manifest = ?", (json.dumps(manifest),))
    db.commit()
    db.close()

    with pytest.raises(IndexError_, match="BM25 index built with other settings .some-older-tokenizer."):
        Index.load(idx, embedder=embedder).search(RARE_QUESTION, k=1, retriever="hybrid")
    again = build(folder, idx, embedder)
    assert again.build_report.chunks_embedded == 0 and "BM25 index rebuilt" in again.build_report.summary()
    assert again.manifest.bm25 == lexical.settings()
    assert again.search(RARE_QUESTION, k=1, retriever="bm25")[0].doc_path == "e1147.md"


def test_cli_retriever_options(tmp_path, rare_index):
    runner = CliRunner()
    idx = str(rare_index.path)
    result = runner.invoke(
        main,
        [
            "search",
            RARE_QUESTION,
            "--index",
            idx,
            "--retriever",
            "hybrid",
            "--rrf-k",
            "10",
            "--bm25-weight",
            "1.5",
            "--pool",
            "3",
            "-k",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["retriever"] == {"kind": "hybrid", "pool": 3, "rrf_k": 10.0, "bm25_weight": 1.5, "mmr": None}
    dense = [p.chunk_id for p in rare_index.search(RARE_QUESTION, k=3, retriever="dense")]
    bm25 = [p.chunk_id for p in rare_index.search(RARE_QUESTION, k=3, retriever="bm25")]
    expected = rrf([dense, bm25], c=10, weights=(1.0, 1.5))[:2]
    assert [(p["chunk_id"], p["score"]) for p in data["passages"]] == [(i, pytest.approx(s)) for i, s in expected]
    bad = runner.invoke(main, ["search", "x", "--index", idx, "--mmr", "2"])
    assert bad.exit_code == 1 and "--mmr takes a lambda between 0 and 1, got 2.0" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
