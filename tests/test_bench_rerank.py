"""`rag bench` with a cross-encoder reranker: the final ranking (what answerers are given) and the
ranking before reranking are both measured, from one search, with a paired interval between them.
A tiny random-weight cross-encoder: its order is arbitrary, which is what shows the two apart."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_qa_set
from tiny_models import build_tiny_cross_encoder, build_tiny_gpt2

from rag.bench.metrics import dedupe, mrr_at_k, ndcg_at_k, recall_at_k
from rag.bench.report import text_table
from rag.bench.runner import BenchConfig, run_bench
from rag.cli import main
from rag.config import DEFAULT_RERANK_POOL
from rag.rerankers.base import RerankSettings
from rag.retrieve import Retriever

DOCS = {
    "bert.md": "BERT is an encoder-only transformer pre-trained with masked language modelling.\n",
    "gpt2.md": "GPT-2 is a decoder-only transformer released by OpenAI in 2019.\n",
    "t5.md": "T5 is an encoder-decoder transformer from Google, pre-trained on the C4 corpus.\n",
    "faiss.md": "FAISS is a library from Meta for similarity search over dense vectors.\n",
    "bm25.md": "BM25 ranks documents by term frequency and inverse document frequency.\n",
}
QUESTIONS = [
    {
        "id": "q1",
        "question": "Which objective is BERT pre-trained with?",
        "answer": "masked language modelling",
        "doc": "bert.md",
    },
    {"id": "q2", "question": "In which year was GPT-2 released?", "answer": "2019", "doc": "gpt2.md"},
    {"id": "q3", "question": "On which corpus was T5 pre-trained?", "answer": "C4", "doc": "t5.md"},
    {"id": "q4", "question": "Which company makes FAISS?", "answer": "Meta", "doc": "faiss.md"},
    {"id": "q5", "question": "What does BM25 rank documents by?", "answer": "term frequency", "doc": "bm25.md"},
]
KS = (1, 3)
COMPARED = ("recall@1", "recall@3", "mrr@10", "ndcg@10", "answer_in_top2", "questions")


@pytest.fixture(scope="module", autouse=True)
def bench_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_CACHE", str(tmp_path_factory.mktemp("rag-cache")))
        yield


@pytest.fixture(scope="module")
def qa_set(tmp_path_factory) -> Path:
    return write_qa_set(tmp_path_factory.mktemp("qa") / "rerank", DOCS, QUESTIONS)


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory) -> str:
    return str(build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "tiny-ce"))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> str:
    return str(build_tiny_gpt2(tmp_path_factory.mktemp("gen") / "tiny-gpt2"))


def reranking(model: str, **settings) -> Retriever:
    """Dense retrieval reranked by `model`'s order alone (weight inf), so a random model reorders."""
    return Retriever(rerank=RerankSettings(model=model, weight=float("inf"), **settings))


def bench(qa_set, out, embedder, retriever=None, **options):
    return run_bench(
        BenchConfig(
            dataset=qa_set,
            out=out,
            embedder=embedder,
            ks=KS,
            passages=2,
            max_new_tokens=4,
            retriever=retriever or Retriever(),
            **options,
        )
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def scores_of(ranked: list[str], doc: str) -> dict[str, float]:
    gold = {doc: 1}
    return {
        "recall@1": recall_at_k(ranked, gold, 1),
        "recall@3": recall_at_k(ranked, gold, 3),
        "mrr@10": mrr_at_k(ranked, gold, 10),
        "ndcg@10": ndcg_at_k(ranked, gold, 10),
    }


def means(rows: list[dict]) -> dict[str, float]:
    return {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}


@pytest.fixture(scope="module")
def reranked_run(tmp_path_factory, qa_set, cross_encoder, gpt2, embedder):
    out = tmp_path_factory.mktemp("runs") / "reranked"
    return bench(qa_set, out, embedder, reranking(cross_encoder), generators=[gpt2])


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, qa_set, embedder):
    return bench(qa_set, tmp_path_factory.mktemp("runs") / "plain", embedder, retrieval_only=True)


def test_both_rankings_are_measured_and_the_final_one_is_reranked(reranked_run, cross_encoder, embedder):
    summary = json.loads((reranked_run.out / "summary.json").read_text())
    gold = {q["id"]: q["doc"] for q in QUESTIONS}
    records = read_jsonl(reranked_run.out / "results.jsonl")
    assert len(records) == len(QUESTIONS)
    assert any(r["retrieved_ids"] != r["retrieved_ids_before_rerank"] for r in records)  # the reranker reordered

    # each section is the mean of its ranking's per-question scores, recomputed here
    after = means([scores_of(r["retrieved_ids"], gold[r["question_id"]]) for r in records])
    before = means([scores_of(r["retrieved_ids_before_rerank"], gold[r["question_id"]]) for r in records])
    for key, value in after.items():
        assert summary["retrieval"][key] == pytest.approx(value), key
        assert summary["retrieval_before_rerank"][key] == pytest.approx(before[key]), key

    # the final ranking is what `Index.search_many` returns with the reranker; before, without it
    from rag.index import Index

    retriever = reranking(cross_encoder)
    texts = [r["question"] for r in records]
    with_rerank = index_search(Index, summary, embedder, texts, retriever)
    without = index_search(Index, summary, embedder, texts, replace(retriever, rerank=None))
    for r, final, first in zip(records, with_rerank, without):
        assert r["retrieved_ids"] == dedupe(p.doc_path for p in final)
        assert r["retrieved_ids_before_rerank"] == dedupe(p.doc_path for p in first)
        assert r["offered_ids"] == [p.doc_path for p in final[:2]]  # the answerer got the reranked passages

    gain = summary["retrieval_rerank_gain"]
    assert gain["questions"] == len(QUESTIONS)
    for key in ("recall@1", "mrr@10"):
        g = gain[key]
        assert g["difference"] == pytest.approx(after[key] - before[key])
        assert g["low"] <= g["difference"] <= g["high"]


def index_search(Index, summary: dict, embedder, texts: list[str], retriever: Retriever) -> list:
    index = Index.load(summary["index"]["path"], embedder)
    try:
        return index.search_many(texts, summary["index"]["chunks"], retriever=retriever)
    finally:
        index.close()


def test_before_section_is_a_run_without_reranker(reranked_run, plain_run):
    before, plain = reranked_run.summary["retrieval_before_rerank"], plain_run.summary["retrieval"]
    assert {k: before[k] for k in COMPARED} == {k: plain[k] for k in COMPARED}
    assert set(before) == set(plain) == set(reranked_run.summary["retrieval"])
    assert before["latency_ms"]["n"] == reranked_run.summary["retrieval"]["latency_ms"]["n"] == len(QUESTIONS)


def test_without_reranker_summary_and_records_are_as_before(plain_run):
    summary = json.loads((plain_run.out / "summary.json").read_text())
    assert "retrieval_before_rerank" not in summary and "retrieval_rerank_gain" not in summary
    assert "reranker" not in summary["settings"] and "rerank" not in summary["settings"]["retriever"]
    assert "reranked by" not in (plain_run.out / "report.md").read_text()
    for r in read_jsonl(plain_run.out / "results.jsonl"):
        assert "retrieved_ids_before_rerank" not in r and "retrieval_before_rerank" not in r


def test_reranker_is_recorded_and_reported(reranked_run, cross_encoder):
    summary = reranked_run.summary
    reranker = summary["settings"]["reranker"]
    assert reranker["model"] == reranker["name"] == cross_encoder
    assert reranker["pool"] == DEFAULT_RERANK_POOL and reranker["weight"] == "inf"
    assert reranker["runtime"] and reranker["dtype"] and reranker["weights_key"]
    assert summary["settings"]["retriever"]["rerank"]["model"] == cross_encoder
    line = f"Retrieval reranked by {cross_encoder} (top {DEFAULT_RERANK_POOL}): recall@1 "
    report = (reranked_run.out / "report.md").read_text()
    assert (
        line in report and "95% CI [" in report and f"reranked by {cross_encoder} (top {DEFAULT_RERANK_POOL}" in report
    )
    assert line in text_table(summary) and line in (reranked_run.out / "report.html").read_text()


def test_the_reranker_keys_the_run(tmp_path, qa_set, cross_encoder, embedder):
    from rag.bench.corpus import load_set
    from rag.bench.resume import run_key_of

    config = BenchConfig(dataset=qa_set, retriever=reranking(cross_encoder))
    bench_set = load_set(config)
    part = {"runtime": "transformers", "dtype": "float32", "weights_key": "a"}
    key = run_key_of("k", bench_set, config, reranker=part)
    assert key != run_key_of("k", bench_set, BenchConfig(dataset=qa_set), reranker=None)
    assert key != run_key_of("k", bench_set, config, reranker={**part, "weights_key": "b"})  # retrained weights
    assert key != run_key_of("k", bench_set, config, reranker={**part, "runtime": "onnxruntime"})
    pool = BenchConfig(dataset=qa_set, retriever=reranking(cross_encoder, pool=5))
    assert key != run_key_of("k", bench_set, pool, reranker=part)

    out = tmp_path / "out"
    first = bench(qa_set, out, embedder, reranking(cross_encoder), retrieval_only=True)
    again = bench(qa_set, out, embedder, reranking(cross_encoder), retrieval_only=True)  # resumed as is
    assert len(read_jsonl(out / "results.jsonl")) == len(QUESTIONS)
    assert again.summary["retrieval"]["mrr@10"] == first.summary["retrieval"]["mrr@10"]


def test_cli_bench_with_reranker(tmp_path, qa_set, cross_encoder):
    out = tmp_path / "out"
    args = ["bench", str(qa_set), "--retrieval-only", "-k", "1,3", "--out", str(out), "-q"]
    result = CliRunner().invoke(main, [*args, "--reranker", cross_encoder, "--rerank-pool", "3"])
    assert result.exit_code == 0, result.output
    assert f"Retrieval reranked by {cross_encoder} (top 3): recall@1 " in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert {"retrieval", "retrieval_before_rerank", "retrieval_rerank_gain"} <= set(summary)
    assert summary["settings"]["reranker"]["pool"] == 3


def test_cli_bench_with_missing_reranker_is_one_line_and_makes_no_folder(tmp_path, qa_set):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-reranker"
    result = CliRunner().invoke(
        main, ["bench", str(qa_set), "--retrieval-only", "--reranker", str(missing), "--out", str(out)]
    )
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1 and str(missing) in result.output, result.output
    assert not out.exists()
