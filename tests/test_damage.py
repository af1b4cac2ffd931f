"""Damage and odd input, tried as a hostile file would: each case ends in one line naming the file
and what repairs it, or in a correct result; never a traceback, silence, or lost results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_qa_set
from tiny_models import build_tiny_qa

from rag.bench.results import JsonlLog
from rag.cli import main


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory) -> Path:
    return build_tiny_qa(tmp_path_factory.mktemp("models") / "tiny-qa")


def test_a_bench_whose_passages_hold_a_unicode_line_separator_resumes(tiny_qa, tmp_path, monkeypatch):
    separator = "\u2028"
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    docs = {"okapi.txt": f"The okapi lives in the Ituri rainforest.{separator}It is related to the giraffe.\n"}
    questions = [
        {"id": "q1", "question": "Where does the okapi live?", "answer": "Ituri rainforest", "doc": "okapi.txt"}
    ]
    qa = write_qa_set(tmp_path, docs, questions)
    out = tmp_path / "o"
    args = ["bench", str(qa), "-g", str(tiny_qa), "--out", str(out), "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    raw = (out / "results.jsonl").read_text(encoding="utf-8")
    assert separator in raw  # written raw (valid JSON), so reading must not split there
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert (out / "results.jsonl").read_text(encoding="utf-8") == raw  # nothing answered twice, nothing lost


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\r", "\x1c"])
def test_results_lines_end_at_newlines_only(separator, tmp_path):
    log = JsonlLog(tmp_path / "results.jsonl")
    records = [{"answer": f"one{separator}two"}, {"answer": "three"}]
    for r in records:
        log.append(r)
    assert log.read() == records


def test_a_damaged_results_line_is_one_line_that_never_advises_deleting_results(tmp_path):
    from rag.errors import RagError

    path = tmp_path / "results.jsonl"
    path.write_text('{"answer": "kept"}\n{garbage\n{"answer": "also kept"}\n', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(RagError) as caught:
        JsonlLog(path).read()
    line = str(caught.value)
    assert "\n" not in line and f"{path}:2" in line and "delete" not in line
    assert path.read_bytes() == before
