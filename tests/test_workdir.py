"""Nothing rag does writes into the folder it is run from, unasked (two ONNX Runtime profiler
dumps once landed in the repository that way). The one documented exception is `.rag/`, the
default index folder, when no --index is given."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, write_docs


def rag(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", "from rag.cli import main; main()", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_commands_leave_the_working_folder_as_it_was(tmp_path):
    docs = write_docs(
        tmp_path / "docs",
        {
            "bert.md": "BERT is pre-trained with a masked language modelling objective.\n",
            "t5.md": "T5 casts every task as text to text, with an encoder and a decoder.\n",
        },
    )
    idx, work = tmp_path / "idx", tmp_path / "work"
    work.mkdir()
    steps = [
        ("--help",),
        ("index", docs, "--index", idx),
        ("search", "masked language modelling", "--index", idx, "-k", "1"),
        ("info", "--index", idx, "--check"),
        ("ask", "Which objective is BERT pre-trained with?", "-g", "minilm-reader", "--index", idx),
        ("models",),
    ]
    for args in steps:
        proc = rag(work, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert sorted(os.listdir(work)) == [], (args, os.listdir(work))
    assert (
        "masked language modelling"
        in rag(work, "ask", "Which objective is BERT pre-trained with?", "-g", "minilm-reader", "--index", idx).stdout
    )


def test_without_index_only_the_documented_rag_folder_appears(tmp_path):
    docs = write_docs(tmp_path / "docs", {"a.md": "Encoders read both ways.\n"})
    work = tmp_path / "work"
    work.mkdir()
    proc = rag(work, "index", docs)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(work)) == [".rag"]
