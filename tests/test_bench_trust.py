"""`rag bench` end to end, on what makes its numbers trustworthy: a changed prompt is never resumed
into old answers, and every pair of generators gets a paired comparison (summary, report, table, plot).
Tiny random-weight models: their scores mean nothing, what is checked is what is counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Counting, write_qa_set
from tiny_models import build_tiny_gpt2, build_tiny_t5

from rag.bench.paired import compare
from rag.bench.report import text_table
from rag.bench.runner import BenchConfig, run_bench
from rag.generators import prompts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DOCS = {
    "bert.md": "BERT is an encoder-only transformer pre-trained with masked language modelling.\n",
    "gpt2.md": "GPT-2 is a decoder-only transformer released by OpenAI in 2019.\n",
    "t5.md": "T5 is an encoder-decoder transformer from Google, pre-trained on the C4 corpus.\n",
    "faiss.md": "FAISS is a library from Meta for similarity search over dense vectors.\n",
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
]


@pytest.fixture(scope="module", autouse=True)
def bench_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_CACHE", str(tmp_path_factory.mktemp("rag-cache")))
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("trust-models")
    return {"t5": str(build_tiny_t5(folder / "tiny-t5")), "gpt2": str(build_tiny_gpt2(folder / "tiny-gpt2"))}


@pytest.fixture(scope="module")
def qa_set(tmp_path_factory) -> Path:
    return write_qa_set(tmp_path_factory.mktemp("qa") / "trust", DOCS, QUESTIONS)


def run(qa_set, out, embedder, generators, **options):
    counting = Counting()
    result = run_bench(
        BenchConfig(
            dataset=qa_set,
            out=out,
            embedder=embedder,
            generators=generators,
            max_new_tokens=4,
            load=counting,
            **options,
        )
    )
    return result, counting.calls


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_changed_prompt_is_not_resumed_into_old_answers(tmp_path, qa_set, models, embedder, monkeypatch):
    t5 = models["t5"]  # a FLAN-style prompt (prompts.FlanPrompt)
    out = tmp_path / "out"
    first, calls = run(qa_set, out, embedder, [t5])
    assert calls == {t5: 4}
    old = read_jsonl(out / "results.jsonl")
    assert len({r["prompt_key"] for r in old}) == 1

    again, calls = run(qa_set, out, embedder, [t5])  # nothing changed: all reused, the key is stable
    assert calls == {} and len(read_jsonl(out / "results.jsonl")) == 4
    assert again.summary["generators"] == first.summary["generators"]  # figures of the load that answered

    original = prompts.FlanPrompt.render
    monkeypatch.setattr(
        prompts.FlanPrompt, "render", lambda self, q, texts: "Reply briefly.\n" + original(self, q, texts)
    )
    changed, calls = run(qa_set, out, embedder, [t5])
    assert calls == {t5: 4}  # every question answered again with the new prompt
    records = read_jsonl(out / "results.jsonl")
    new = records[4:]
    assert len(records) == 8 and {r["prompt_key"] for r in new} != {old[0]["prompt_key"]}
    g = changed.summary["generators"][0]
    assert g["questions"] == 4 and g["status"] == "ok"  # the report counts the new answers only
    assert g["f1"] == pytest.approx(sum(r["f1"] for r in new) / 4)
    # the longer prompt shows in the prompt length: the figures are the new answers' own
    old_prompt, new_prompt = (sum(r["prompt_tokens"] for r in rs) / 4 for rs in (old, new))
    assert new_prompt > old_prompt and g["prompt_tokens"]["mean"] == pytest.approx(new_prompt)

    # back to the first prompt: its answers are there, valid for it, reused, and counted again
    monkeypatch.undo()
    back, calls = run(qa_set, out, embedder, [t5])
    assert calls == {} and len(read_jsonl(out / "results.jsonl")) == 8
    g = back.summary["generators"][0]
    assert g["questions"] == 4 and g["prompt_tokens"]["mean"] == pytest.approx(old_prompt)


def test_pairs_are_compared_in_summary_report_table_and_plot(tmp_path, qa_set, models, embedder):
    names = [models["t5"], models["gpt2"]]
    result, _ = run(qa_set, tmp_path / "out", embedder, names, extractive=True, limit=3)
    labels = [names[0], f"{names[0]}+extractive", names[1], f"{names[1]}+extractive"]
    pairs = result.summary["paired"]
    assert [(p["a"], p["b"]) for p in pairs] == [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    records = read_jsonl(tmp_path / "out" / "results.jsonl")
    by = {label: [r for r in records if r["generator"] == label] for label in labels}
    for p in pairs:
        assert p == json.loads(json.dumps(compare(p["a"], by[p["a"]], p["b"], by[p["b"]])))  # the module's figures
        assert p["questions"] == 3 and p["wins"] + p["ties"] + p["losses"] == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["paired"] == pairs and "_f1_by_question" not in summary and "_f1_by_question" not in result.summary
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Paired comparisons" in report and "![paired_f1.png](paired_f1.png)" in report
    for p in pairs:
        assert f"| {p['a']} | {p['b']} | 3 |" in report
    png = (tmp_path / "out" / "paired_f1.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 2000
    assert "W/T/L (F1)" in text_table(result.summary)
