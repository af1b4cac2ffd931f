from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from rag.cli import main

from conftest import ROOT, write_docs


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_help_does_not_import_torch():
    code = "import sys, rag.cli; sys.argv = ['rag', '--help']\ntry:\n    rag.cli.main()\nexcept SystemExit:\n    pass\n" \
           "assert not {'torch', 'transformers', 'faiss', 'sentence_transformers'} & set(sys.modules), 'heavy import'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "index" in proc.stdout and "search" in proc.stdout


def test_index_search_info_roundtrip(tmp_path, embedder):
    docs = write_docs(tmp_path / "docs", {
        "bert.md": "BERT is pre-trained with masked language modelling.\n",
        "gpt2.md": "GPT-2 predicts the next token, left to right.\n",
        "bad.pdf": b"%PDF-1.4 nonsense",
    })
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
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
