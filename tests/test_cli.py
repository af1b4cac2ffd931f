from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from conftest import ROOT, write_docs

from rag.cli import main


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_help_does_not_import_torch():
    code = (
        "import sys, rag.cli; sys.argv = ['rag', '--help']\ntry:\n    rag.cli.main()\nexcept SystemExit:\n    pass\n"
        "assert not {'torch', 'transformers', 'faiss', 'sentence_transformers'} & set(sys.modules), 'heavy import'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "index" in proc.stdout and "search" in proc.stdout


def test_index_search_info_roundtrip(tmp_path, embedder):
    docs = write_docs(
        tmp_path / "docs",
        {
            "bert.md": "BERT is pre-trained with masked language modelling.\n",
            "gpt2.md": "GPT-2 predicts the next token, left to right.\n",
            "bad.pdf": b"%PDF-1.4 nonsense",
        },
    )
    idx = str(tmp_path / "idx")
    result = run("index", str(docs), "--index", idx)
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output and "1 skipped" in result.output
    assert "skipped bad.pdf: corrupt PDF" in result.output  # one warning line, run goes on

    result = run("search", "masked language model pre-training", "-k", "1", "--index", idx, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passages"][0]["citation"] == "bert.md:1" and data["passages"][0]["rank"] == 1
    assert data["passages"][0]["text"] == "BERT is pre-trained with masked language modelling."

    result = run("search", "next token", "--index", idx)
    assert result.exit_code == 0 and " 1. " in result.output and "gpt2.md:1" in result.output

    result = run("info", "--index", idx)
    assert result.exit_code == 0
    assert "documents:    2" in result.output and "all-MiniLM-L6-v2" in result.output

    result = run("search", "next token", env={"RAG_INDEX": idx})  # the index from the environment
    assert result.exit_code == 0 and "gpt2.md" in result.output


def test_errors_are_one_line_and_non_zero(tmp_path):
    cases = [
        (["search", "anything", "--index", str(tmp_path / "none")], "no index at"),
        (["info", "--index", str(tmp_path / "none")], "no index at"),
        (["search", "  ", "--index", str(tmp_path / "none")], "the query is empty"),
        (["search", "x", "-k", "0", "--index", str(tmp_path / "none")], "-k must be at least 1"),
        (["index", str(tmp_path / "missing-folder"), "--index", str(tmp_path / "i")], "does not exist"),
        (["index", str(tmp_path), "--index", str(tmp_path / "i"), "--overlap", "300"], "--overlap must be"),
        (["index", "", "--index", str(tmp_path / "i")], "the folder is empty"),
        (["index", str(tmp_path), "--index", ""], "the --index path is empty"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_non_finite_numbers_are_refused(tmp_path):
    idx = str(tmp_path / "none")
    cases = [
        (
            ["search", "x", "--index", idx, "--retriever", "hybrid", "--bm25-weight", "nan"],
            "--bm25-weight must be a finite number, got nan",
        ),
        (
            ["search", "x", "--index", idx, "--retriever", "hybrid", "--rrf-k", "inf"],
            "--rrf-k must be a finite number, got inf",
        ),
        (["search", "x", "--index", idx, "--mmr", "nan"], "--mmr must be a finite number"),
        (["ask", "x", "--index", idx, "--temperature", "nan"], "--temperature must be a finite number"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_control_characters_in_names_are_escaped_on_a_terminal(tmp_path, embedder, tiny_t5):
    docs = write_docs(tmp_path / "docs", {"evil\x1b[31mred\nname.md": "T5 is an encoder-decoder model.\n"})
    idx = str(tmp_path / "idx")
    result = run("index", str(docs), "--index", idx)
    assert result.exit_code == 0 and "\x1b" not in result.output
    result = run("search", "encoder-decoder", "--index", idx, "-k", "1")
    assert "\x1b" not in result.output and "evil\\x1b[31mred\\nname.md:1" in result.output
    assert len([line for line in result.output.splitlines() if "evil" in line]) == 1  # not split by the newline
    data = json.loads(run("search", "encoder-decoder", "--index", idx, "-k", "1", "--json").output)
    assert data["passages"][0]["doc_path"] == "evil\x1b[31mred\nname.md"  # JSON keeps the real name
    result = run("ask", "What is T5?", "--generator", tiny_t5, "--index", idx, "-k", "1", "--max-new-tokens", "3")
    assert result.exit_code == 0 and "\x1b" not in result.output and "[1] evil\\x1b[31mred\\nname.md:1" in result.output


def test_an_empty_generator_list_says_so(tmp_path):
    result = run("compare", "q", "-g", ",", "--index", str(tmp_path / "none"))
    assert result.exit_code == 1 and "--generators ',' names no generator" in result.output


def test_index_into_a_users_folder_is_refused_and_nothing_changes(tmp_path, embedder):
    from conftest import folder_bytes

    docs = write_docs(tmp_path / "docs", {"a.md": "Some text.\n"})
    thesis = write_docs(tmp_path / "thesis", {"thesis.tex": "\\chapter{One}", "figures/plot.png": b"\x89PNG"})
    before = folder_bytes(thesis)
    result = run("index", str(docs), "--index", str(thesis))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "is a folder of 2 entries (figures, thesis.tex) that is not a rag index" in result.output
    assert folder_bytes(thesis) == before and sorted(p.name for p in thesis.rglob("*")) == [
        "figures",
        "plot.png",
        "thesis.tex",
    ]


def test_index_json_reports_embedded_and_reused_chunks(tmp_path, embedder):
    docs = write_docs(tmp_path / "docs", {"a.md": "Alpha text.\n", "b.md": "Beta text.\n"})
    idx = str(tmp_path / "idx")
    first = json.loads(run("index", str(docs), "--index", idx, "--json", "-q").output)
    assert (first["added"], first["chunks_embedded"], first["chunks_reused"], first["generation"]) == (2, 2, 0, 1)
    (docs / "b.md").rename(docs / "c.md")
    second = json.loads(run("index", str(docs), "--index", idx, "--json", "-q").output)
    assert (second["added"], second["removed"], second["chunks_embedded"], second["chunks_reused"]) == (1, 1, 0, 1)


def _small_index(tmp_path) -> str:
    docs = write_docs(
        tmp_path / "docs",
        {
            "t5.md": "T5 is an encoder-decoder model. It reads text and writes text.\n",
            "gpt2.md": "GPT-2 is a decoder-only model. It predicts the next token.\n",
        },
    )
    idx = str(tmp_path / "idx")
    assert run("index", str(docs), "--index", idx, "-q").exit_code == 0
    return idx


def test_ask_prints_answer_sources_and_timings(tmp_path, embedder, tiny_t5):
    idx = _small_index(tmp_path)
    result = run(
        "ask",
        "What kind of model is T5?",
        "--generator",
        tiny_t5,
        "--index",
        idx,
        "-k",
        "2",
        "--max-new-tokens",
        "5",
        "--verbose",
        "--show-passages",
    )
    assert result.exit_code == 0, result.output
    assert "generator: " in result.output and "(encoder-decoder; transformers float32)" in result.output
    assert "Sources:\n  [1] t5.md:1\n" in result.output  # the best passage, cited by file and line
    assert "T5 is an encoder-decoder model." in result.output  # --show-passages
    assert "retrieval" in result.output and "tokens/s" in result.output and "#1 t5.md:1: whole" in result.output

    result = run(
        "ask",
        "What kind of model is T5?",
        "--generator",
        tiny_t5,
        "--index",
        idx,
        "-k",
        "2",
        "--max-new-tokens",
        "5",
        "--json",
    )
    data = json.loads(result.output)
    assert data["family"] == "encoder-decoder" and data["citations"][0] == "t5.md:1"
    assert [b["status"] for b in data["budget"]] == ["whole", "whole"] and data["output_tokens"] <= 5


def test_compare_runs_both_families_on_the_same_passages(tmp_path, embedder, tiny_t5, tiny_gpt2):
    idx = _small_index(tmp_path)
    names = f"{tiny_t5},{tiny_gpt2},nonexistent-org/nope"
    result = run(
        "compare",
        "Which model predicts the next token?",
        "--generators",
        names,
        "--index",
        idx,
        "--max-new-tokens",
        "4",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    ok = [r for r in data["results"] if r["answer"]]
    assert [r["answer"]["family"] for r in ok] == ["encoder-decoder", "decoder-only"]
    assert ok[0]["answer"]["citations"] == ok[1]["answer"]["citations"] == [p["citation"] for p in data["passages"]]
    [missing] = [r for r in data["results"] if r["error"]]
    assert missing["generator"] == "nonexistent-org/nope" and "rag models pull" in missing["error"]

    result = run(
        "compare",
        "Which model predicts the next token?",
        "--generators",
        f"{tiny_t5},{tiny_gpt2}",
        "--index",
        idx,
        "--max-new-tokens",
        "4",
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("generator"))
    assert all(col in header for col in ("family", "answer", "latency", "prompt tok", "cut"))
    assert "encoder-decoder" in result.output and "decoder-only" in result.output


def test_extractive_ask_and_compare_cite_the_passage_holding_the_span(tmp_path, embedder, tiny_t5, tiny_gpt2):
    idx = _small_index(tmp_path)
    result = run(
        "ask",
        "What kind of model is T5?",
        "--generator",
        tiny_gpt2,
        "--index",
        idx,
        "-k",
        "2",
        "--max-new-tokens",
        "5",
        "--extractive",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    given = data["passages"][data["span"]["passage"]]
    assert data["extractive"] and data["text"] and data["text"] in given["text"]
    assert data["span"]["citation"] == given["citation"]

    result = run(
        "ask",
        "What kind of model is T5?",
        "--generator",
        f"{tiny_t5}+extractive",
        "--index",
        idx,
        "-k",
        "2",
        "--max-new-tokens",
        "5",
    )
    assert result.exit_code == 0, result.output
    assert (
        ", extractive; transformers float32)" in result.output and "<- the answer is copied from here" in result.output
    )

    result = run(
        "compare",
        "Which model predicts the next token?",
        "--generators",
        f"{tiny_t5},{tiny_gpt2}",
        "--index",
        idx,
        "--max-new-tokens",
        "4",
        "--extractive",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert [r["generator"] for r in data["results"]] == [
        tiny_t5,
        f"{tiny_t5}+extractive",
        tiny_gpt2,
        f"{tiny_gpt2}+extractive",
    ]
    for r in data["results"]:
        answer = r["answer"]
        assert answer["extractive"] == r["generator"].endswith("+extractive")
        if answer["extractive"]:
            assert answer["text"] in data["passages"][answer["span"]["passage"]]["text"]


def test_ask_missing_model_is_one_clear_line(tmp_path, embedder):
    idx = _small_index(tmp_path)
    result = run("ask", "anything", "--generator", "nonexistent-org/nope", "--index", idx)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "nonexistent-org/nope" in line and "not available offline" in line and "rag models pull" in line


def test_models_lists_presets_with_availability():
    result = run("models")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)  # fits a 100-column terminal
    header = ["name", "family", "size", "available", "runtime"]
    starts = [lines[0].index(h) for h in header]
    assert starts == sorted(starts)

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]

    table = lines[1 : lines.index("")]
    rows = {cells(line)[0]: cells(line) for line in table}
    assert set(rows) >= {"flan-t5-small", "flan-t5-base", "t5-small", "gpt2", "distilgpt2", "smollm2", "minilm-reader"}
    assert rows["smollm2"][1] == "decoder-only" and rows["smollm2"][3] == "yes"  # the packaged GGUF
    assert rows["flan-t5-small"][1] == "encoder-decoder"
    assert rows["minilm-reader"][1] == "encoder-only" and rows["minilm-reader"][4].startswith("onnxruntime")
    assert rows["smollm2"][4] == "transformers float32 (GGUF dequantised)"
    verbose = run("models", "--verbose").output
    assert all(len(line) <= 100 for line in verbose.splitlines())
    smollm2 = verbose[verbose.index("\nsmollm2: ") :].split("\n\n")[0]
    assert "licence Apache-2.0" in smollm2 and "weights: 0.5 / 0.3 GiB" in smollm2 and "source: " in smollm2
    assert "licence Gemma Terms of Use" in verbose
