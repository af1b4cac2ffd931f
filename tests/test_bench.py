"""`rag bench` end to end: tiny random-weight models of both families, the real packaged embedder,
small qa-jsonl and BEIR sets written here. Scores of random models are meaningless; what is
checked is what gets written, counted, resumed and reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Counting, write_docs, write_qa_set
from tiny_models import build_tiny_gpt2, build_tiny_t5

from rag.bench.metrics import ndcg_at_k
from rag.bench.runner import BenchConfig, run_bench, sample_questions
from rag.cli import main
from rag.errors import RagError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MISSING = "nonexistent-org/nope"

DOCS = {
    "bert.md": "# BERT\n\nBERT is an encoder-only transformer. It is pre-trained with masked language modelling "
    "on BooksCorpus and English Wikipedia.\n",
    "gpt2.md": "# GPT-2\n\nGPT-2 is a decoder-only transformer released by OpenAI in 2019. It predicts the next "
    "token from left to right and has 1.5 billion parameters in its largest size.\n",
    "t5.md": "# T5\n\nT5 is an encoder-decoder transformer from Google. It casts every task as text-to-text "
    "and was pre-trained on the C4 corpus with span corruption.\n",
    "faiss.md": "# FAISS\n\nFAISS is a library from Meta for similarity search over dense vectors. A flat index "
    "compares the query with every stored vector.\n",
}
QUESTIONS = [
    {
        "id": "q1",
        "question": "Which objective is BERT pre-trained with?",
        "answer": "masked language modelling",
        "aliases": ["masked language modeling"],
        "doc": "bert.md",
    },
    {"id": "q2", "question": "In which year was GPT-2 released?", "answer": "2019", "doc": "gpt2.md"},
    {
        "id": "q3",
        "question": "On which corpus was T5 pre-trained?",
        "answer": "C4",
        "aliases": ["the C4 corpus"],
        "doc": "t5.md",
    },
    {"id": "q4", "question": "Which company makes FAISS?", "answer": "Meta", "doc": "faiss.md"},
    {
        "id": "q5",
        "question": "How many parameters does the largest GPT-2 have?",
        "answer": "1.5 billion",
        "doc": "gpt2.md",
    },
]


@pytest.fixture(scope="module", autouse=True)
def bench_cache(tmp_path_factory):
    """Bench indexes go to a temporary rag cache, shared by this module's runs (built once)."""
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("rag-cache")
        mp.setenv("RAG_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bench-models")
    return {"t5": str(build_tiny_t5(folder / "tiny-t5")), "gpt2": str(build_tiny_gpt2(folder / "tiny-gpt2"))}


@pytest.fixture(scope="module")
def qa_set(tmp_path_factory) -> Path:
    return write_qa_set(tmp_path_factory.mktemp("qa") / "mini", DOCS, QUESTIONS)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def config(dataset, out, embedder, **options) -> BenchConfig:
    return BenchConfig(dataset=Path(dataset), out=Path(out), embedder=embedder, max_new_tokens=6, **options)


# --- end to end through the CLI ----------------------------------------------------------------


def test_cli_bench_writes_results_summary_report_and_plots(tmp_path, qa_set, models, bench_cache):
    out = tmp_path / "out"
    names = f"{models['t5']},{models['gpt2']},{MISSING}"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(qa_set),
            "--generators",
            names,
            "-k",
            "1,2",
            "--passages",
            "2",
            "--max-new-tokens",
            "6",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recall@2" in result.output and "tiny-t5" in result.output and MISSING in result.output

    lines = read_jsonl(out / "results.jsonl")
    assert len(lines) == len(QUESTIONS) * 2  # the missing generator writes none
    assert {(r["generator"], r["question_id"]) for r in lines} == {
        (g, q["id"]) for g in (models["t5"], models["gpt2"]) for q in QUESTIONS
    }
    for r in lines:
        assert len(r["offered_ids"]) == 2 and r["retrieved_ids"][:2] == list(dict.fromkeys(r["retrieved_ids"]))[:2]
        assert set(r["timings"]) >= {"generation_ms", "tokens_per_s"} and r["prompt_tokens"] > 0
        assert 0 <= r["f1"] <= 1 and r["em"] in (0.0, 1.0)

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {
        "dataset",
        "sample",
        "settings",
        "index",
        "retrieval",
        "generators",
        "machine",
        "versions",
        "command",
        "seconds",
    }
    retrieval = summary["retrieval"]
    for key in ("recall@1", "recall@2", "mrr@10", "ndcg@10", "answer_in_top2"):
        assert 0 <= retrieval[key] <= 1, key
    assert retrieval["recall@1"] <= retrieval["recall@2"]
    assert retrieval["recall@2"] >= 0.8  # the questions are easy; the real embedder finds their documents
    assert retrieval["latency_ms"]["n"] == len(QUESTIONS) and retrieval["latency_ms"]["p50"] > 0

    by_name = {g["name"]: g for g in summary["generators"]}
    assert by_name[MISSING]["status"] == "not available" and "not available offline" in by_name[MISSING]["error"]
    assert {by_name[models["t5"]]["family"], by_name[models["gpt2"]]["family"]} == {"encoder-decoder", "decoder-only"}
    for name in (models["t5"], models["gpt2"]):
        g = by_name[name]
        assert g["status"] == "ok" and g["questions"] == len(QUESTIONS)
        for key in ("em", "f1", "answer_in_passages", "prediction_supported", "empty_rate", "questions_with_cut"):
            assert 0 <= g[key] <= 1, key
        assert g["load_s"] > 0 and g["peak_rss_mb"] > 100 and g["tokens_per_s"] > 0
        assert 0 < g["generation_ms"]["p50"] <= g["generation_ms"]["p95"]
        assert g["prompt_tokens"]["mean"] > 0 and g["parameters"] > 0
    assert summary["versions"]["torch"] and summary["machine"]["cpu_count"]

    report = (out / "report.md").read_text()
    assert "| generator | family | EM | F1 |" in report and "| recall@1 |" in report
    assert f"`{MISSING}` (not available)" in report
    for png in ("quality_latency.png", "recall_at_k.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and len(data) > 2000
    assert any((bench_cache / "bench-index").iterdir())  # the index went to the cache, keyed


def test_cli_errors_are_one_line(tmp_path, qa_set, beir_set):
    cases = [
        (["bench", str(qa_set), "-k", "0"], "-k takes numbers of at least 1"),
        (["bench", str(qa_set), "-k", "one"], "-k takes comma-separated whole numbers"),
        (["bench", str(qa_set), "--oracle", "--retrieval-only"], "cannot go with --retrieval-only"),
        (["bench", str(beir_set), "--generators", "gpt2"], "has no answers"),
        (["bench", str(tmp_path / "nothing.json")], "no such file or folder"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


# --- oracle, resuming, determinism ---------------------------------------------------------------


def test_oracle_gives_the_gold_document(tmp_path, qa_set, models, embedder):
    retrieved = run_bench(config(qa_set, tmp_path / "r", embedder, generators=[models["t5"]], passages=2))
    oracle = run_bench(config(qa_set, tmp_path / "o", embedder, generators=[models["t5"]], passages=2, oracle=True))
    assert oracle.summary["settings"]["mode"] == "oracle" and retrieved.summary["settings"]["mode"] == "retrieved"
    for r in read_jsonl(tmp_path / "o" / "results.jsonl"):
        assert r["oracle"] and r["offered_ids"] == r["gold_ids"]
        assert r["given"] and r["given"][0].startswith(r["gold_ids"][0] + ":1")  # whole document, from line 1
    for r in read_jsonl(tmp_path / "r" / "results.jsonl"):
        assert len(r["offered_ids"]) == 2  # the top two retrieved chunks, not the gold document alone
    # retrieval is still measured in oracle mode, and identically
    assert oracle.summary["retrieval"]["recall@1"] == retrieved.summary["retrieval"]["recall@1"]


def test_resume_skips_finished_pairs_and_matches_a_fresh_run(tmp_path, qa_set, models, embedder):
    names = [models["t5"], models["gpt2"]]
    out = tmp_path / "resumed"

    first = Counting()
    run_bench(config(qa_set, out, embedder, generators=names, limit=2, sample_seed=3, load=first))
    assert first.calls == {names[0]: 2, names[1]: 2}

    rest = Counting()
    run_bench(config(qa_set, out, embedder, generators=names, load=rest))  # same --out, no limit: the rest
    assert rest.calls == {names[0]: 3, names[1]: 3}
    results = out / "results.jsonl"
    assert len(read_jsonl(results)) == 10

    # A kill mid-write: the last line lost, the one before it torn half-way.
    lines = results.read_text(encoding="utf-8").splitlines(keepends=True)
    results.write_text("".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2], encoding="utf-8")
    again = Counting()
    resumed = run_bench(config(qa_set, out, embedder, generators=names, load=again))
    assert sum(again.calls.values()) == 2 and len(read_jsonl(results)) == 10

    fresh = run_bench(config(qa_set, tmp_path / "fresh", embedder, generators=names))
    key = lambda r: (r["generator"], r["question_id"])  # noqa: E731
    stored = {key(r): r for r in read_jsonl(results)}
    for r in read_jsonl(tmp_path / "fresh" / "results.jsonl"):  # greedy decoding: same answers
        assert (r["answer"], r["f1"], r["retrieved_ids"]) == (
            stored[key(r)]["answer"],
            stored[key(r)]["f1"],
            stored[key(r)]["retrieved_ids"],
        )
    for a, b in zip(resumed.summary["generators"], fresh.summary["generators"]):
        assert (a["em"], a["f1"], a["answer_in_passages"]) == (b["em"], b["f1"], b["answer_in_passages"])

    # Another setup in the same --out is refused rather than mixed in.
    with pytest.raises(RagError, match="another setup"):
        run_bench(config(qa_set, out, embedder, generators=names, passages=1))


def test_extractive_runs_beside_free_and_resumes_on_its_own(tmp_path, qa_set, models, embedder):
    """--extractive adds each generator's extractive twin: same passages, answers that are spans
    of what it was given, its own rows; adding it to a finished run answers only the new rows."""
    out = tmp_path / "modes"
    name = models["gpt2"]
    run_bench(config(qa_set, out, embedder, generators=[name], limit=3))
    counted = Counting()
    run = run_bench(config(qa_set, out, embedder, generators=[name], limit=3, extractive=True, load=counted))
    assert counted.calls == {name: 3}  # the free answers were resumed, the extractive ones are new
    assert [g["name"] for g in run.summary["generators"]] == [name, f"{name}+extractive"]
    assert [g["extractive"] for g in run.summary["generators"]] == [False, True]
    assert {(g["runtime"], g["dtype"]) for g in run.summary["generators"]} == {("transformers", "float32")}
    records = read_jsonl(out / "results.jsonl")
    by_mode = {False: [r for r in records if not r["extractive"]], True: [r for r in records if r["extractive"]]}
    assert len(by_mode[False]) == len(by_mode[True]) == 3
    for r in by_mode[True]:
        assert r["generator"] == f"{name}+extractive"
        assert r["answer"] and r["source"] in r["given"]  # (a random model may copy half a word:
        # the answer is a span of characters, which "prediction supported" counts in whole words)
    free = {r["question_id"]: r for r in by_mode[False]}
    assert all(free[r["question_id"]]["given"] == r["given"] for r in by_mode[True])
    assert f"{Path(name).name}+extractive" in (out / "report.md").read_text()


def test_sample_is_fixed_and_nested():
    from rag.bench.datasets import BenchQuestion

    questions = [BenchQuestion(str(i), f"q{i}", ["a"], {"d": 1}) for i in range(50)]
    small, large = sample_questions(questions, 5, 7), sample_questions(questions, 20, 7)
    assert small == sample_questions(questions, 5, 7) and len(large) == 20
    assert set(q.id for q in small) <= set(q.id for q in large)
    assert [q.id for q in small] == sorted((q.id for q in small), key=int)  # the set's order
    assert sample_questions(questions, 5, 8) != small and sample_questions(questions, 99, 0) == questions


# --- BEIR, retrieval only ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def beir_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("beir") / "minibeir"
    corpus = [
        {
            "_id": "d1",
            "title": "Vitamin D",
            "text": "Vitamin D supplements reduce the risk of bone fractures in older adults.",
        },
        {"_id": "d2", "title": "Smoking", "text": "Smoking tobacco causes lung cancer and heart disease."},
        {"_id": "d3", "title": "Exercise", "text": "Regular aerobic exercise lowers blood pressure."},
        {"_id": "d4", "title": "Sleep", "text": "Short sleep is linked with obesity in children."},
        {"_id": "d5", "title": "Bones", "text": "Calcium intake matters for bone density."},
    ]
    queries = [
        {"_id": "1", "text": "Vitamin D prevents fractures in the elderly."},
        {"_id": "2", "text": "Tobacco smoking leads to lung cancer."},
        {"_id": "3", "text": "Exercise reduces hypertension."},
        {"_id": "4", "text": "A query without judgements is not a question."},
    ]
    qrels = "query-id\tcorpus-id\tscore\r\n1\td1\t2\r\n1\td5\t1\r\n2\td2\t1\r\n3\td3\t1\r\n"
    write_docs(
        root,
        {
            "corpus.jsonl": "".join(json.dumps(d) + "\n" for d in corpus),
            "queries.jsonl": "".join(json.dumps(q) + "\n" for q in queries),
            "qrels/test.tsv": qrels,
        },
    )
    return root


def test_beir_set_is_benchmarked_retrieval_only(tmp_path, beir_set, embedder):
    out = tmp_path / "beir-out"
    run = run_bench(BenchConfig(dataset=beir_set, out=out, embedder=embedder, ks=[1, 3]))  # no answers: retrieval only
    summary = run.summary
    assert summary["settings"]["mode"] == "retrieval-only" and summary["generators"] == []
    assert summary["retrieval"]["questions"] == 3 and "answer_in_top5" not in summary["retrieval"]
    lines = read_jsonl(out / "results.jsonl")
    assert len(lines) == 3 and all(r["generator"] is None for r in lines)
    gold = {"1": {"d1": 2, "d5": 1}, "2": {"d2": 1}, "3": {"d3": 1}}
    expected = sum(ndcg_at_k(r["retrieved_ids"], gold[r["question_id"]], 10) for r in lines) / 3
    assert summary["retrieval"]["ndcg@10"] == pytest.approx(expected) and expected > 0.8
    assert "| ndcg@10 |" in (out / "report.md").read_text()
    assert (out / "recall_at_k.png").read_bytes()[:8] == PNG_MAGIC and not (out / "quality_latency.png").exists()
    assert os.path.basename(summary["index"]["path"]).startswith("minibeir-")


def test_retriever_is_recorded_and_keys_the_run(tmp_path, qa_set, embedder):
    from rag.bench.corpus import load_set as _load_set
    from rag.bench.resume import run_key_of as _run_key
    from rag.retrieve import Retriever

    runs = {}
    for kind in ("dense", "bm25", "hybrid"):
        out = tmp_path / kind
        runs[kind] = run_bench(
            config(qa_set, out, embedder, retrieval_only=True, retriever=Retriever(kind=kind))
        ).summary
        assert runs[kind]["settings"]["retriever"]["kind"] == kind
        assert f"retriever {kind}" in (out / "report.md").read_text()
    # every question names its document's subject (BERT, GPT-2, T5, FAISS): all three rank it first
    assert [runs[k]["retrieval"]["recall@1"] for k in ("dense", "bm25", "hybrid")] == [1.0, 1.0, 1.0]
    assert runs["bm25"]["retrieval"]["mrr@10"] == 1.0

    base = config(qa_set, tmp_path / "x", embedder)  # the default retriever: hybrid
    bench = _load_set(base)
    dense = config(qa_set, tmp_path / "x", embedder, retriever=Retriever(kind="dense"))
    dense_key = _run_key("k", bench, dense)
    hybrid = config(qa_set, tmp_path / "x", embedder, retriever=Retriever(kind="hybrid"))
    assert _run_key("k", bench, hybrid) != dense_key  # answers from other passages are not resumed
    assert _run_key("k", bench, base) == _run_key("k", bench, hybrid) != dense_key  # a default run is a hybrid run
    oracle = config(qa_set, tmp_path / "x", embedder, oracle=True)
    oracle_hybrid = config(qa_set, tmp_path / "x", embedder, oracle=True, retriever=Retriever(kind="hybrid"))
    assert _run_key("k", bench, oracle) == _run_key("k", bench, oracle_hybrid)  # oracle ignores the retriever


def test_cli_bench_takes_retriever_options(tmp_path, qa_set):
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(qa_set),
            "--retrieval-only",
            "--retriever",
            "hybrid",
            "--rrf-k",
            "5",
            "--out",
            str(tmp_path / "o"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "retriever hybrid (RRF c=5" in result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["settings"]["retriever"]["rrf_k"] == 5.0


# --- folders that are not rag's ------------------------------------------------------------------


def test_out_folder_holding_a_users_files_is_refused_untouched(tmp_path, qa_set, embedder):
    from conftest import folder_bytes

    mine = write_docs(tmp_path / "mine", {"results.jsonl": '{"my": "data"}\n{"torn', "report.md": "# My report\n"})
    before = folder_bytes(mine)
    result = CliRunner().invoke(main, ["bench", str(qa_set), "--retrieval-only", "--out", str(mine)])
    assert result.exit_code == 1 and "that `rag bench` did not write" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert folder_bytes(mine) == before
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RagError, match="is a file"):
        run_bench(config(qa_set, a_file, embedder, retrieval_only=True))
    run = run_bench(config(qa_set, tmp_path / "ours", embedder, retrieval_only=True))  # a new folder is marked ...
    assert (run.out / "rag-bench.json").exists()
    run_bench(config(qa_set, tmp_path / "ours", embedder, retrieval_only=True))  # ... and resumed


def test_bench_index_is_one_folder_per_dataset_updated_in_place(tmp_path, embedder, monkeypatch):
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "set"
    write_docs(root / "docs", DOCS)
    (root / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    first = run_bench(config(root / "qa.jsonl", tmp_path / "o1", embedder, retrieval_only=True))
    (root / "docs" / "extra.md").write_text("An extra document about nothing in particular.\n")
    second = run_bench(config(root / "qa.jsonl", tmp_path / "o2", embedder, retrieval_only=True))
    assert first.summary["index"]["path"] == second.summary["index"]["path"]
    assert second.summary["index"]["chunks_embedded"] == 1 and second.summary["index"]["documents"] == len(DOCS) + 1
    assert len(list((tmp_path / "cache" / "bench-index").iterdir())) == 1
