from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag import faiss_index, store
from rag.errors import IndexError_, IndexLocked, RagError
from rag.index import Index

from conftest import ROOT, folder_bytes, make_pdf, write_docs

DOCS = {
    "bert.md": "# BERT\n\nBERT is an encoder-only transformer pre-trained with masked language modelling.\n",
    "gpt2.txt": "GPT-2 is a decoder-only language model with a context window of 1024 tokens.\n",
    "t5/t5.rst": "T5\n==\n\nT5 is an encoder-decoder model that casts every task as text to text.\n",
    "faiss.html": "<html><body><h1>FAISS</h1><p>FAISS searches dense vectors quickly.</p><script>x()</script></body></html>",
    "rag.pdf": make_pdf(["Retrieval-augmented generation retrieves passages before answering."]),
    "empty.txt": "",
    "noise.bin.txt": b"\x00\x00\x01binary",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs", DOCS)


def build(folder: Path, index_dir: Path, embedder, **kw) -> Index:
    return Index.build(folder, index_dir, embedder=embedder, warn=lambda m: None, **kw)


def rows(index: Index) -> list[tuple]:
    return index.db.execute('SELECT doc_path, start, "end", text, vector FROM chunks ORDER BY doc_path, start').fetchall()


def test_build_search_and_load(corpus, tmp_path, embedder):
    index = build(corpus, tmp_path / "idx", embedder)
    report = index.build_report
    assert (report.added, report.changed, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert sorted(p for p, _ in report.skipped) == ["empty.txt", "noise.bin.txt"]
    assert index.documents() == ["bert.md", "faiss.html", "gpt2.txt", "rag.pdf", "t5/t5.rst"]
    assert {f.name for f in (tmp_path / "idx").iterdir()} == {"index.faiss", "meta.sqlite", "manifest.json", "bm25"}
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (manifest["dimension"], manifest["metric"], manifest["normalized"]) == (384, "inner_product", True)
    assert manifest["chunking"]["tokens"] == 200 and manifest["counts"] == {"documents": 5, "chunks": 5}

    [hit] = index.search("How long is the context of GPT-2?", k=1)
    assert hit.doc_path == "gpt2.txt" and hit.rank == 1 and 0 < hit.score <= 1.0001
    assert hit.citation == "gpt2.txt:1"
    hits = Index.load(tmp_path / "idx", embedder=embedder).search("text-to-text encoder-decoder", k=10)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]  # k larger than the index: all chunks, no padding
    assert hits[0].doc_path == "t5/t5.rst"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search("dense vector search library", k=1)[0].doc_path == "faiss.html"
    assert index.search("passages retrieved before answering", k=1)[0].doc_path == "rag.pdf"


def test_incremental_update_embeds_only_what_changed(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    first = rows(build(corpus, idx, embedder))
    (corpus / "bert.md").write_text("# BERT\n\nBERT uses WordPiece tokens and a [CLS] token.\n")
    (corpus / "gpt2.txt").unlink()
    write_docs(corpus, {"new/bart.md": "BART is a denoising sequence-to-sequence autoencoder.\n"})
    embedded: list[str] = []
    real_encode = type(embedder).encode
    monkeypatch.setattr(type(embedder), "encode", lambda self, texts, **kw: embedded.extend(texts) or real_encode(self, texts, **kw))
    index = build(corpus, idx, embedder)
    r = index.build_report
    assert (r.added, r.changed, r.removed, r.unchanged, len(r.skipped)) == (1, 1, 1, 3, 2)
    assert len(embedded) == 2 and any("WordPiece" in t for t in embedded) and any("BART" in t for t in embedded)
    second = rows(index)
    unchanged = [row for row in first if row[0] in ("faiss.html", "rag.pdf", "t5/t5.rst")]
    assert [row for row in second if row[0] in ("faiss.html", "rag.pdf", "t5/t5.rst")] == unchanged  # same text, same vectors
    assert not any(row[0] == "gpt2.txt" for row in second)
    assert index.search("denoising autoencoder", k=1)[0].doc_path == "new/bart.md"
    assert index.search("WordPiece", k=1)[0].doc_path == "bert.md"
    assert len(index) == 5

    embedded.clear()
    again = build(corpus, idx, embedder)  # nothing changed: nothing embedded, nothing rewritten
    assert embedded == [] and again.build_report.unchanged == 5 and again.build_report.chunks_embedded == 0


def test_unreadable_file_keeps_its_previous_version(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "rag.pdf").write_bytes(b"%PDF-1.4\ntruncated garbage")
    index = build(corpus, idx, embedder)
    assert ("rag.pdf", "corrupt PDF (PdfReadError)") in index.build_report.skipped or any(
        p == "rag.pdf" and "corrupt PDF" in why for p, why in index.build_report.skipped)
    assert "rag.pdf" in index.documents()


def test_exception_mid_save_leaves_previous_index_whole(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    files_before = folder_bytes(idx)
    (corpus / "gpt2.txt").write_text("Changed text about something else entirely.\n")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(faiss_index, "build", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build(corpus, idx, embedder)
    assert folder_bytes(idx) == files_before
    assert rows(Index.load(idx, embedder=embedder)) == before
    assert not store.temp_paths(idx)  # the half-written folder is cleaned up


def test_process_killed_between_the_two_renames_is_recovered(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    (corpus / "gpt2.txt").write_text("Changed text.\n")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from rag import store
        from rag.index import Index
        real_rename = os.rename
        def rename(src, dst):
            real_rename(src, dst)
            if str(dst).endswith(".old"):
                os._exit(9)   # killed right after moving the old index aside
        store.os.rename = rename
        Index.build({str(corpus)!r}, {str(idx)!r}, warn=lambda m: None)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr
    assert not idx.exists() and store.old_path(idx).exists()
    assert rows(Index.load(idx, embedder=embedder)) == before  # the previous index is still found
    index = build(corpus, idx, embedder)  # and the next run completes the update
    assert idx.exists() and not store.old_path(idx).exists() and not store.temp_paths(idx)
    assert index.build_report.changed == 1


def test_second_writer_fails_fast_while_lock_is_held(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys, time; from filelock import FileLock; l = FileLock({str(store.lock_path(idx))!r}); "
         "l.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLocked, match="another process"):
            build(corpus, idx, embedder)
    finally:
        holder.kill()
        holder.wait()
    assert len(Index.load(idx, embedder=embedder)) == 5


def test_manifest_mismatches_are_refused(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    with pytest.raises(IndexError_, match="built with embedder 'sentence-transformers/all-MiniLM-L6-v2', not 'other/model'"):
        Index.load(idx, embedder="other/model")
    with pytest.raises(IndexError_, match="built with embedder"):
        Index.build(corpus, idx, embedder="other/model", warn=lambda m: None)
    manifest_path = idx / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dimension"] = 768
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexError_, match="768"):
        Index.load(idx, embedder=embedder)
    manifest["dimension"], manifest["format_version"] = 384, 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexError_, match="format version 99"):
        Index.load(idx, embedder=embedder)


def test_another_folder_into_the_same_index_is_refused(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    other = write_docs(tmp_path / "other", {"x.md": "something else"})
    with pytest.raises(IndexError_, match="holds documents from"):
        build(other, idx, embedder)
    assert len(Index.load(idx, embedder=embedder)) == 5


def test_missing_index_and_bad_queries(tmp_path, corpus, embedder):
    with pytest.raises(IndexError_, match="no index at"):
        Index.load(tmp_path / "nowhere")
    index = build(corpus, tmp_path / "idx", embedder)
    with pytest.raises(RagError, match="empty"):
        index.search("   ")
    with pytest.raises(RagError, match="k must be at least 1"):
        index.search("bert", k=0)
    with pytest.raises(RagError, match="no supported documents"):
        build(write_docs(tmp_path / "nothing", {"a.py": "x"}), tmp_path / "idx2", embedder)


def test_index_folder_inside_the_corpus_is_not_indexed(corpus, embedder):
    index = build(corpus, corpus / "myindex", embedder)
    again = build(corpus, corpus / "myindex", embedder)
    assert again.build_report.unchanged == 5 and again.build_report.added == 0
    assert not any(p.startswith("myindex") for p in index.documents())


def test_hnsw_and_ivfpq(corpus, tmp_path, embedder):
    flat = build(corpus, tmp_path / "flat", embedder)
    hnsw = build(corpus, tmp_path / "hnsw", embedder, index_type="hnsw")
    query = "masked language modelling"
    assert [p.chunk_id for p in hnsw.search(query, 3)] == [p.chunk_id for p in flat.search(query, 3)]
    assert hnsw.manifest["index_params"]["M"] == 32
    with pytest.raises(RagError, match="ivfpq needs at least .* chunks to train on; this corpus has 5"):
        build(corpus, tmp_path / "ivf", embedder, index_type="ivfpq")
    assert not (tmp_path / "ivf").exists()


def test_ivfpq_trains_on_enough_vectors():
    import numpy as np

    rng = np.random.default_rng(0)
    n, d = 2000, 32
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, params = faiss_index.build("ivfpq", np.arange(n, dtype=np.int64) + 100, vectors, d)
    assert params["nlist"] == faiss_index.ivfpq_lists(n) and index.ntotal == n
    _, ids = index.search(vectors[:20], 1)
    assert (ids[:, 0] == np.arange(20) + 100).mean() >= 0.5  # compressed, so approximate
