"""The ONNX Runtime embedder: same vectors as torch within tolerance, same search results, no
torch on the query path, a damaged cached export made again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import CORPUS, ROOT

from rag.embedders import load_embedder
from rag.embedders.onnx import EXPORT, FILES, OnnxEmbedder, cached, export_folder

NAME = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def exported():
    """The packaged MiniLM exported once into the user's rag cache (as `rag index` would)."""
    _ = OnnxEmbedder(NAME).folder
    return export_folder(NAME)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    paragraphs = [p for path in sorted((CORPUS / "docs").glob("*.md")) for p in path.read_text().split("\n\n")]
    return [p for p in paragraphs if len(p) > 40][:120]


@pytest.mark.parametrize("backend, floor", [("onnx-fp32", 0.9999), ("onnx", 0.98)])
def test_onnx_vectors_agree_with_torch(exported, embedder, texts, backend, floor):
    onnx = OnnxEmbedder(NAME, backend).encode(texts)
    torch = embedder.encode(texts)
    assert onnx.shape == torch.shape and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.min() >= floor and cosines.mean() >= (0.999 if backend == "onnx-fp32" else 0.99)


@pytest.mark.parametrize("backend", ["onnx-fp32", "onnx"])
def test_search_results_agree_across_backends(exported, corpus_index, qa_items, backend):
    """Queries embedded by ONNX on an index built by torch: the same top 5 (fp32), or the same top
    hit and nearly the same top 5 (int8, whose quantisation noise swaps near-ties)."""
    from rag.index import Index

    onnx_queries = Index.load(corpus_index.path, embedder=OnnxEmbedder(NAME, backend))
    same_five = same_first = overlap = 0
    for item in qa_items:
        torch_top = [p.chunk_id for p in corpus_index.search(item["question"], k=5)]
        onnx_top = [p.chunk_id for p in onnx_queries.search(item["question"], k=5)]
        same_five += set(torch_top) == set(onnx_top)
        same_first += torch_top[0] == onnx_top[0]
        overlap += len(set(torch_top) & set(onnx_top)) / 5
    n = len(qa_items)
    assert same_first / n >= 0.95 and overlap / n >= 0.95, (same_first, overlap)
    if backend == "onnx-fp32":
        assert same_five / n >= 0.95, same_five


def test_an_index_built_with_onnx_is_searched_with_torch_and_back(exported, tmp_path, embedder, monkeypatch):
    from rag.index import Index

    idx = tmp_path / "idx"
    built = Index.build(CORPUS / "docs", idx, backend="onnx", warn=lambda m: None, notify=lambda m: None)
    assert built.manifest.backend == "onnx" and built.embedder.backend == "onnx"
    question = "Which objective is BERT pre-trained with?"
    onnx_hits = [p.doc_path for p in built.search(question, k=3)]
    torch_hits = [p.doc_path for p in Index.load(idx, embedder=embedder).search(question, k=3)]
    assert (
        onnx_hits[0] in torch_hits and torch_hits[0] in onnx_hits and {"bert.md", "bert-variants.md"} & {onnx_hits[0]}
    )
    monkeypatch.setenv("RAG_QUERY_BACKEND", "torch")
    assert Index.load(idx).embedder.backend == "torch"


def test_the_onnx_query_path_imports_no_torch(exported, corpus_index):
    code = (
        "import sys, json\n"
        "from rag.cli import main\n"
        f"sys.argv = ['rag', 'search', 'What does cross-attention attend to?', '-k', '3', '--json', '--index', {str(corpus_index.path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'sklearn'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passages"][0]["citation"].startswith("cross-attention.md")


def test_a_missing_or_damaged_export_is_made_again_with_one_line(exported, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RAG_CACHE", str(cache))
    target = export_folder(NAME)
    shutil.copytree(exported, target)
    assert cached(NAME, "onnx") == target
    model = target / FILES["onnx"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flipped bytes in the weights
    model.write_bytes(bytes(data))
    assert cached(NAME, "onnx") is None
    said: list[str] = []
    embedder = load_embedder(NAME, "onnx", notify=said.append)
    vector = embedder.encode(["a sentence"])
    assert len(said) == 1 and "damaged or incomplete: exporting it again" in said[0]
    assert cached(NAME, "onnx") == target and vector.shape == (1, 384)
    recorded = json.loads((target / EXPORT).read_text())["files"]
    assert set(recorded) == {"model.onnx", "model-int8.onnx", "tokenizer.json"}
    (target / FILES["onnx"]).unlink()
    assert cached(NAME, "onnx") is None


def test_a_folder_rag_did_not_make_at_the_export_target_is_left_intact(tmp_path, monkeypatch):
    from rag.embedders.onnx import export, export_folder
    from rag.errors import EmbedderNotAvailable

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    target = export_folder(NAME)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(EmbedderNotAvailable, match="rag did not make it"):
        export(NAME, notify=lambda m: None)
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporary folder left
