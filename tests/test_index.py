from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, folder_bytes, make_pdf, write_docs

from rag import faiss_index, lexical, store
from rag.errors import IndexError_, IndexLocked, RagError
from rag.index import Index

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
    folder = write_docs(tmp_path / "docs", DOCS)
    age(folder)
    return folder


def age(folder: Path, seconds: float = 3600) -> None:
    """Date every file an hour back, so a size+mtime check can trust them (a file modified in the
    last two seconds before it was hashed is always hashed again)."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def build(folder: Path, index_dir: Path, embedder, **kw) -> Index:
    return Index.build(folder, index_dir, embedder=embedder, warn=lambda m: None, notify=lambda m: None, **kw)


def rows(index: Index) -> list[tuple]:
    """The current generation's chunks: (path, start, end, text, vector)."""
    g = index.manifest.generation
    return index.db.execute(
        'SELECT c.doc_path, c.start, c."end", c.text, v.vector FROM chunks c JOIN vectors v ON v.sha256 = c.sha256 '
        "WHERE c.gen_added <= ? AND (c.gen_removed IS NULL OR c.gen_removed > ?) ORDER BY c.doc_path, c.start",
        (g, g),
    ).fetchall()


class CountingEncode:
    """Counts the texts an embedder is asked to encode (monkeypatched onto the Embedder class)."""

    def __init__(self, monkeypatch, embedder) -> None:
        self.texts: list[str] = []
        real = type(embedder).encode
        monkeypatch.setattr(
            type(embedder), "encode", lambda emb, texts, **kw: self.texts.extend(texts) or real(emb, texts, **kw)
        )


# --- building, searching, updating ---------------------------------------------------------------


def test_build_search_and_load(corpus, tmp_path, embedder):
    index = build(corpus, tmp_path / "idx", embedder)
    report = index.build_report
    assert (report.added, report.changed, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert sorted(p for p, _ in report.skipped) == ["empty.txt", "noise.bin.txt"]
    assert index.documents() == ["bert.md", "faiss.html", "gpt2.txt", "rag.pdf", "t5/t5.rst"]
    assert {f.name for f in (tmp_path / "idx").iterdir()} == {
        "rag-index.json",
        "meta.sqlite",
        "write.lock",
        "gen-000001",
    }
    assert {f.name for f in (tmp_path / "idx" / "gen-000001").iterdir()} == {
        "base-000",
        "delta",
        "deleted.npy",
        "rag-generation.json",
    }
    m = index.manifest
    assert m.embedder == "sentence-transformers/all-MiniLM-L6-v2" and m.generation == 1
    assert (m.dimension, m.metric, m.normalized) == (384, "inner_product", True)
    assert m.chunking["tokens"] == 200 and m.counts["documents"] == 5 and m.counts["chunks"] == 5
    assert set(m.files) == {
        "deleted.npy",
        *(
            f"{part}/{name}"
            for part in ("base-000", "delta")
            for name in ("index.faiss", *(f"bm25/{f}" for f in lexical.FILES))
        ),
    }
    assert (m.counts["segments"], m.counts["base"], m.counts["delta"], m.counts["deleted"]) == ([5], 5, 0, 0)

    [hit] = index.search("How long is the context of GPT-2?", k=1, retriever="dense")  # a cosine score
    assert hit.doc_path == "gpt2.txt" and hit.rank == 1 and 0 < hit.score <= 1.0001
    assert hit.citation == "gpt2.txt:1"
    hits = Index.load(tmp_path / "idx", embedder=embedder).search("text-to-text encoder-decoder", k=10)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]  # k larger than the index: all chunks, no padding
    assert hits[0].doc_path == "t5/t5.rst"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.search("dense vector search library", k=1)[0].doc_path == "faiss.html"
    assert index.search("passages retrieved before answering", k=1)[0].doc_path == "rag.pdf"


def test_incremental_update_embeds_only_what_changed(corpus, tmp_path, embedder, monkeypatch, merge_policy):
    idx = tmp_path / "idx"
    first = rows(build(corpus, idx, embedder))
    (corpus / "bert.md").write_text("# BERT\n\nBERT uses WordPiece tokens and a [CLS] token.\n")
    (corpus / "gpt2.txt").unlink()
    write_docs(corpus, {"new/bart.md": "BART is a denoising sequence-to-sequence autoencoder.\n"})
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder)
    r = index.build_report
    assert (r.added, r.changed, r.removed, r.unchanged, len(r.skipped)) == (1, 1, 1, 3, 2)
    assert (
        len(encoded.texts) == 2
        and any("WordPiece" in t for t in encoded.texts)
        and any("BART" in t for t in encoded.texts)
    )
    assert (r.chunks_embedded, r.chunks_reused, r.generation) == (2, 0, 2)
    second = rows(index)
    unchanged = [row for row in first if row[0] in ("faiss.html", "rag.pdf", "t5/t5.rst")]
    assert [
        row for row in second if row[0] in ("faiss.html", "rag.pdf", "t5/t5.rst")
    ] == unchanged  # same text, same vectors
    assert not any(row[0] == "gpt2.txt" for row in second)
    assert index.search("denoising autoencoder", k=1)[0].doc_path == "new/bart.md"
    assert index.search("WordPiece", k=1)[0].doc_path == "bert.md"
    assert len(index) == 5 and index.verify() == []
    counts = index.manifest.counts
    if merge_policy == "merge-2":
        assert counts["segments"] == [1, 1, 2, 1] and (counts["delta"], counts["deleted"]) == (0, 0)
        assert index.manifest.base_generation == 2
    elif merge_policy == "delta":  # the base is the first generation's, linked; the changes are beside it
        assert (counts["base"], counts["delta"], counts["deleted"], index.manifest.base_generation) == (5, 2, 2, 1)
        first_base = store.gen_dir(idx, 1) / "base-000" / "index.faiss"
        assert (store.gen_dir(idx, 2) / "base-000" / "index.faiss").stat().st_ino == first_base.stat().st_ino
    else:
        assert (counts["base"], counts["delta"], counts["deleted"], index.manifest.base_generation) == (5, 0, 0, 2)

    encoded.texts.clear()
    again = build(corpus, idx, embedder)  # nothing changed: nothing embedded, no new generation
    assert encoded.texts == [] and again.build_report.unchanged == 5 and again.build_report.chunks_embedded == 0
    assert again.manifest.generation == 2


def test_unchanged_size_and_mtime_skip_reading_and_rehash_reads(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    path = corpus / "gpt2.txt"
    stat = path.stat()
    path.write_text(path.read_text().replace("1024", "2048"))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime: not read at all
    reads: list[str] = []
    import rag.build

    real_read = rag.build.sources.read_file
    monkeypatch.setattr(rag.build.sources, "read_file", lambda p: reads.append(os.path.basename(p)) or real_read(p))
    index = build(corpus, idx, embedder)
    assert set(reads) == {"empty.txt", "noise.bin.txt"}  # only the files that were skipped last time
    assert index.build_report.unchanged == 5
    assert index.search("context window", k=1)[0].text.endswith("1024 tokens.")
    index = build(corpus, idx, embedder, rehash=True)  # --rehash reads and hashes every file
    assert "gpt2.txt" in reads and index.build_report.changed == 1
    assert index.search("context window", k=1)[0].text.endswith("2048 tokens.")


def test_a_file_modified_right_after_it_was_hashed_is_hashed_again(tmp_path, embedder):
    folder = write_docs(tmp_path / "docs", {"a.md": "alpha beta gamma\n"})  # mtime: now
    idx = tmp_path / "idx"
    build(folder, idx, embedder)
    stat = (folder / "a.md").stat()
    (folder / "a.md").write_text("delta beta gamma\n")  # same size, same mtime tick
    os.utime(folder / "a.md", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    index = build(folder, idx, embedder)
    assert index.build_report.changed == 1 and "delta" in index.search("delta", k=1)[0].text


def test_renamed_file_and_edited_paragraph_reuse_vectors(tmp_path, embedder, monkeypatch, merge_policy):
    paragraphs = [
        f"Paragraph {i} is about topic number {i}, " + "with several words of filler text. " * 12 for i in range(8)
    ]
    folder = write_docs(tmp_path / "docs", {"long.md": "\n\n".join(paragraphs) + "\n", "other.md": "Something else.\n"})
    idx = tmp_path / "idx"
    build(folder, idx, embedder, chunk_tokens=64, overlap=0)
    encoded = CountingEncode(monkeypatch, embedder)

    (folder / "other.md").rename(folder / "moved.md")
    moved = build(folder, idx, embedder)
    r = moved.build_report
    assert (r.added, r.removed, r.chunks_embedded, r.chunks_reused) == (1, 1, 0, 1) and encoded.texts == []
    assert moved.search("Something else", k=1)[0].doc_path == "moved.md"
    encoded.texts.clear()

    paragraphs[5] = "Paragraph five now speaks of quokkas on Rottnest Island, and of nothing else at all."
    (folder / "long.md").write_text("\n\n".join(paragraphs) + "\n")
    edited = build(folder, idx, embedder)
    r = edited.build_report
    n_long = edited.db.execute("SELECT chunks FROM documents WHERE path = 'long.md'").fetchone()[0]
    assert (
        n_long > 10 and r.changed == 1 and 1 <= r.chunks_embedded <= 2 and r.chunks_reused == n_long - r.chunks_embedded
    )
    assert all("quokkas" in t or "Paragraph 4" in t or "Paragraph 6" in t for t in encoded.texts)
    assert edited.search("quokkas on Rottnest", k=1)[0].doc_path == "long.md"
    assert edited.verify() == []


def test_bm25_update_tokenises_only_new_chunks(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    write_docs(corpus, {"new.md": "Zephyrine Oduya mapped the river delta by canoe.\n"})
    seen: list[str] = []
    real = lexical.tokenize
    monkeypatch.setattr(lexical, "tokenize", lambda text: seen.append(text) or real(text))
    index = build(corpus, idx, embedder)
    assert seen == ["Zephyrine Oduya mapped the river delta by canoe."]
    assert index.search("Zephyrine canoe", k=1, retriever="bm25")[0].doc_path == "new.md"


def test_delta_segments_search_like_a_merged_index(tmp_path, embedder, monkeypatch):
    """The same updates written as delta segments and as merges give the same rankings and
    scores: BM25's statistics span both segments, and deleted base chunks never come back."""
    from rag import segments

    topics = [
        "encoders read text",
        "decoders write text",
        "FAISS finds vectors",
        "BM25 counts words",
        "T5 maps text to text",
        "GPT-2 predicts tokens",
        "BERT masks tokens",
        "RAG retrieves passages",
    ]
    folders = {}
    for policy in ("delta", "merge", "segments"):
        monkeypatch.setattr(segments, "MERGE_FRACTION", 1e9 if policy == "delta" else 0.0)
        monkeypatch.setattr(segments, "SEGMENT_CHUNKS", 3 if policy == "segments" else 200_000)
        folder = write_docs(tmp_path / policy / "docs", {f"d{i}.md": f"{t}. " * 3 + "\n" for i, t in enumerate(topics)})
        age(folder)
        idx = tmp_path / policy / "idx"
        build(folder, idx, embedder)
        (folder / "d1.md").unlink()
        write_docs(
            folder, {"d2.md": "FAISS finds vectors, and counts words like BM25.\n", "new.md": "Words about tokens.\n"}
        )
        build(folder, idx, embedder)
        (folder / "d6.md").rename(folder / "moved.md")
        (folder / "new.md").unlink()
        folders[policy] = build(folder, idx, embedder)
    delta, merged, split = folders["delta"], folders["merge"], folders["segments"]
    assert delta.manifest.counts["deleted"] == 3 and merged.manifest.counts["deleted"] == 0
    assert split.manifest.counts["segments"] == [1, 3, 2, 1] and split.verify() == []
    for query in ("tokens", "words and vectors", "text", "decoders write text"):
        for kind in ("dense", "bm25", "hybrid"):
            a, b, c = (index.search(query, k=8, retriever=kind) for index in (delta, merged, split))
            assert (
                [(p.doc_path, p.text) for p in a]
                == [(p.doc_path, p.text) for p in b]
                == [(p.doc_path, p.text) for p in c]
            )
            assert [p.score for p in a] == pytest.approx([p.score for p in b], rel=1e-5), (query, kind)
            assert [p.score for p in c] == pytest.approx([p.score for p in b], rel=1e-5), (query, kind)
            assert not {"d1.md", "new.md", "d6.md"} & {p.doc_path for p in a}


def test_postings_update_equals_a_fresh_build():
    rng = np.random.default_rng(1)
    ids = np.arange(100, 160, dtype=np.int64)
    terms = [rng.integers(0, 40, size=rng.integers(1, 30)) for _ in ids]
    fresh = lexical.Postings.build(ids, terms)
    removed = ids[rng.permutation(len(ids))[:20]]
    added_ids = np.arange(500, 510, dtype=np.int64)
    added = [rng.integers(0, 55, size=rng.integers(1, 30)) for _ in added_ids]  # some terms new to the vocabulary
    updated = fresh.update(removed, added_ids, added)
    keep = [i for i, cid in enumerate(ids) if cid not in set(removed)]
    rebuilt = lexical.Postings.build(np.concatenate([ids[keep], added_ids]), [terms[i] for i in keep] + added)
    for name in ("chunk_ids", "lengths", "term_ptr", "rows", "tfs"):
        assert np.array_equal(getattr(updated, name), getattr(rebuilt, name)), name
    queries = [list(rng.integers(0, 55, size=4)) for _ in range(10)]
    assert updated.search(queries, 7) == rebuilt.search(queries, 7)


def test_bm25_scores_match_bm25s_lucene():
    import bm25s

    rng = np.random.default_rng(2)
    docs = [[f"w{t}" for t in rng.integers(0, 30, size=rng.integers(3, 25))] for _ in range(40)]
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    postings = lexical.Postings.build(np.arange(40), [np.array([vocab[w] for w in d]) for d in docs])
    reference = bm25s.BM25(method="lucene", k1=lexical.K1, b=lexical.B)
    reference.index(docs, show_progress=False)
    for query in (["w1", "w2"], ["w3", "w3", "w7"], ["w29"]):
        rows, scores = reference.retrieve([query], k=5, show_progress=False)
        ours = postings.search([[vocab[w] for w in query]], 5)[0]
        assert [s for _, s in ours] == pytest.approx([float(s) for s in scores[0]][: len(ours)], rel=1e-5)
        assert {i for i, _ in ours} == {int(r) for r, s in zip(rows[0], scores[0]) if s > 0} or len(ours) == 5


def test_unreadable_file_keeps_its_previous_version(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "rag.pdf").write_bytes(b"%PDF-1.4\ntruncated garbage")
    index = build(corpus, idx, embedder)
    assert any(p == "rag.pdf" and "corrupt PDF" in why for p, why in index.build_report.skipped)
    assert "rag.pdf" in index.documents()


def test_fifo_in_the_folder_is_skipped_not_read(corpus, tmp_path, embedder):
    os.mkfifo(corpus / "pipe.txt")
    index = build(corpus, tmp_path / "idx", embedder)  # would hang forever if the FIFO were opened
    assert ("pipe.txt", "not a regular file (a FIFO, socket or device)") in index.build_report.skipped


def test_index_folder_inside_the_corpus_is_not_indexed(corpus, tmp_path, embedder):
    index = build(corpus, corpus / "myindex", embedder)
    build(corpus, tmp_path / "elsewhere", embedder)
    (corpus / "other-index").symlink_to(tmp_path / "elsewhere")
    again = build(corpus, corpus / "myindex", embedder)
    assert again.build_report.unchanged == 5 and again.build_report.added == 0
    assert not any(p.startswith(("myindex", "other-index")) for p in index.documents() + again.documents())


def test_hnsw_and_ivfpq(corpus, tmp_path, embedder, merge_policy):
    flat = build(corpus, tmp_path / "flat", embedder)
    hnsw = build(corpus, tmp_path / "hnsw", embedder, index_type="hnsw")
    query = "masked language modelling"
    assert [p.text for p in hnsw.search(query, 3)] == [p.text for p in flat.search(query, 3)]
    assert hnsw.manifest.index_params["M"] == 32
    (
        corpus / "gpt2.txt"
    ).unlink()  # merged: rebuilt from the stored vectors (hnsw cannot remove); delta: skipped by a selector
    hnsw = build(corpus, tmp_path / "hnsw", embedder)
    assert hnsw.manifest.index_type == "hnsw" and len(hnsw) == 4 and hnsw.verify() == []
    assert "gpt2.txt" not in {p.doc_path for p in hnsw.search("GPT-2 context window", k=4)}
    with pytest.raises(RagError, match="ivfpq needs at least .* chunks to train on; this corpus has 4"):
        build(corpus, tmp_path / "ivf", embedder, index_type="ivfpq")
    with pytest.raises(IndexError_, match="no complete generation"):
        Index.load(tmp_path / "ivf")


def test_ivfpq_trains_on_enough_vectors_and_is_retrained_when_the_corpus_grows_fourfold():
    rng = np.random.default_rng(0)
    n, d = 2000, 32
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, params = faiss_index.build("ivfpq", np.arange(n, dtype=np.int64) + 100, vectors, d)
    assert params["nlist"] == faiss_index.ivfpq_lists(n) and index.ntotal == n and params["trained_on"] == n
    _, ids = index.search(vectors[:20], 1)
    assert (ids[:, 0] == np.arange(20) + 100).mean() >= 0.5  # compressed, so approximate
    assert faiss_index.can_update("ivfpq", params, 10, n + 10) and not faiss_index.can_update("ivfpq", params, 0, 5 * n)


def test_settings_default_to_what_the_index_records(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder, chunk_tokens=64, overlap=8, index_type="hnsw")
    encoded = CountingEncode(monkeypatch, embedder)
    same = build(corpus, idx, embedder)  # no options: the recorded ones, not the defaults
    assert same.manifest.chunking["tokens"] == 64 and same.manifest.chunking["overlap"] == 8
    assert same.manifest.index_type == "hnsw" and same.manifest.generation == 1 and encoded.texts == []

    notes: list[str] = []
    changed = Index.build(corpus, idx, embedder=embedder, index_type="flat", warn=lambda m: None, notify=notes.append)
    assert notes == [
        "--index-type flat differs from the index's hnsw: the FAISS index is rebuilt from the stored "
        "vectors (nothing is embedded again)"
    ]
    assert changed.manifest.index_type == "flat" and encoded.texts == []
    notes.clear()
    Index.build(corpus, idx, embedder=embedder, chunk_tokens=100, warn=lambda m: None, notify=notes.append)
    assert len(notes) == 1 and notes[0].startswith("--chunk-tokens 100 --overlap 8 differ from the index's 64/8")


def test_chunk_ids_are_never_reused(corpus, tmp_path, embedder, merge_policy):
    idx = tmp_path / "idx"
    before = set(build(corpus, idx, embedder).live_ids())
    (corpus / "gpt2.txt").unlink()
    write_docs(corpus, {"gpt2.txt": "GPT-2 is a decoder-only language model with a context window of 1024 tokens!\n"})
    after = build(corpus, idx, embedder)
    new = set(after.live_ids()) - before
    assert len(new) == 1 and min(new) > max(before)


# --- what a user's folders must never suffer -------------------------------------------------------


def test_a_folder_that_is_not_an_index_is_refused_untouched(corpus, tmp_path, embedder):
    thesis = write_docs(tmp_path / "thesis", {"chapter1.tex": "My thesis.", "notes/todo.txt": "write it"})
    before = folder_bytes(thesis)
    with pytest.raises(
        IndexError_, match=r"thesis is a folder of 2 entries \(chapter1.tex, notes\) that is not a rag index"
    ):
        build(corpus, thesis, embedder)
    assert folder_bytes(thesis) == before and sorted(p.name for p in thesis.iterdir()) == ["chapter1.tex", "notes"]
    with pytest.raises(IndexError_, match="is not a rag index"):
        Index.load(thesis)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(IndexError_, match="is a file, not an index folder"):
        build(corpus, a_file, embedder)
    assert a_file.read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(build(corpus, empty, embedder)) == 5  # an empty folder may be used


def test_only_folders_rag_marked_are_ever_removed(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    mine = {"idx.old": {"a.txt": "keep me"}, "idx.tmp-123": {"b.txt": "and me"}, "idx.lock": {"c.txt": "me too"}}
    for name, files in mine.items():
        write_docs(tmp_path / name, files)
    build(corpus, idx, embedder)
    write_docs(idx, {"gen-000000/user.txt": "not rag's", "gen-000009/user.txt": "not rag's either"})
    (corpus / "gpt2.txt").unlink()
    build(corpus, idx, embedder)
    (corpus / "bert.md").unlink()
    build(corpus, idx, embedder)
    for name, files in mine.items():
        assert {p.name: p.read_text() for p in (tmp_path / name).iterdir()} == files
    assert (idx / "gen-000000" / "user.txt").exists() and (idx / "gen-000009" / "user.txt").exists()
    assert sorted(store.gen_dirs(idx)) == [0, 2, 3, 9]  # rag's own generation 1 was removed; the user's stay


def test_symlinked_index_path_is_one_index_with_one_lock(corpus, tmp_path, embedder):
    target = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    build(corpus, link, embedder)
    assert link.is_symlink() and (target / store.MARKER).exists()
    (corpus / "gpt2.txt").unlink()
    index = build(corpus, link, embedder)
    assert link.is_symlink() and len(index) == 4 and index.path == target.resolve()
    with store.write_lock(target.resolve()):
        with pytest.raises(IndexLocked):
            build(corpus, link, embedder)


def test_special_characters_in_the_index_path(corpus, tmp_path, embedder):
    idx = tmp_path / "odd #1 ?x=%20&"
    build(corpus, idx, embedder)
    assert Index.load(idx).search("GPT-2 context window", k=1)[0].doc_path == "gpt2.txt"


def test_second_writer_fails_fast_while_lock_is_held(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, time; from filelock import FileLock; l = FileLock({str(idx / store.LOCK)!r}); "
            "l.acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLocked, match="another process"):
            build(corpus, idx, embedder)
    finally:
        holder.kill()
        holder.wait()
    assert len(Index.load(idx, embedder=embedder)) == 5


def test_embedder_and_source_mismatches_are_refused(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    with pytest.raises(
        IndexError_, match="built with embedder 'sentence-transformers/all-MiniLM-L6-v2', not 'other/model'"
    ):
        Index.load(idx, embedder="other/model")
    with pytest.raises(IndexError_, match="built with embedder"):
        Index.build(corpus, idx, embedder="other/model", warn=lambda m: None)
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


# --- generations: readers, crashes, full disks ----------------------------------------------------


def test_a_reader_keeps_its_generation_or_gets_one_line(corpus, tmp_path, embedder, merge_policy):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    reader = Index.load(idx, embedder=embedder)
    (corpus / "gpt2.txt").unlink()
    build(corpus, idx, embedder)
    # One update later the reader still sees its own generation, deleted document included,
    # and its BM25 (loaded lazily) is that generation's too.
    assert reader.search("GPT-2 context window", k=1)[0].doc_path == "gpt2.txt"
    assert reader.search("GPT-2 context window", k=1, retriever="bm25")[0].doc_path == "gpt2.txt"
    (corpus / "bert.md").unlink()
    build(corpus, idx, embedder)
    # Two updates later its generation is gone: what it can still read is right, the rest is one line.
    assert reader.search("text to text encoder-decoder", k=1)[0].doc_path == "t5/t5.rst"
    with pytest.raises(IndexError_, match="updated by another process .*generation 1 is gone, 3 is current"):
        reader.search("GPT-2 context window", k=5)
    assert Index.load(idx).documents() == ["faiss.html", "rag.pdf", "t5/t5.rst"]


def _run_killed(script: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from rag import build, store
        from rag.embedders.st import TorchEmbedder
        from rag.index import Index
    """) + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_killed_first_build_resumes_with_what_it_embedded(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    proc = _run_killed(f"""
        build.embed.EMBED_BATCH = 2
        calls = []
        real = TorchEmbedder.encode
        def encode(self, texts, **kw):
            calls.append(len(texts))
            if len(calls) == 3:
                os._exit(9)   # killed while embedding the third batch: two are committed
            return real(self, texts, **kw)
        TorchEmbedder.encode = encode
        Index.build({str(corpus)!r}, {str(idx)!r}, backend="torch", warn=lambda m: None)
    """)
    assert proc.returncode == 9, proc.stderr
    with pytest.raises(IndexError_, match="no complete generation yet"):
        Index.load(idx)
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder)
    assert len(encoded.texts) == 1 and index.build_report.chunks_embedded == 1 and index.build_report.chunks_reused == 4
    assert len(index) == 5 and index.verify() == []


@pytest.mark.parametrize("where", ["commit", "finish"])
def test_killed_update_leaves_one_whole_generation(corpus, tmp_path, embedder, where, merge_policy):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    (corpus / "gpt2.txt").write_text("Changed text about GPT-2's tokeniser.\n")
    proc = _run_killed(f"""
        from rag import segments
        segments.MERGE_FRACTION = {1e9 if merge_policy == "delta" else 0.0}
        def die(*args, **kwargs):
            os._exit(9)
        setattr(build.ledger.Ledger, {where!r}, die)
        Index.build({str(corpus)!r}, {str(idx)!r}, warn=lambda m: None)
    """)
    assert proc.returncode == 9, proc.stderr
    loaded = Index.load(idx, embedder=embedder)
    if where == "commit":  # killed before the commit: the old generation, whole
        assert loaded.manifest.generation == 1 and rows(loaded) == before
        assert sorted(store.gen_dirs(idx)) == [1, 2]  # the unfinished one is there until the next run
    else:  # killed after the commit: the new generation, whole
        assert loaded.manifest.generation == 2 and "tokeniser" in loaded.search("GPT-2 tokeniser", k=1)[0].text
    assert loaded.verify() == []
    index = build(corpus, idx, embedder)  # the next run completes or cleans up, even with nothing to do
    assert index.manifest.generation == 2 and "tokeniser" in index.search("GPT-2 tokeniser", k=1)[0].text
    assert sorted(store.gen_dirs(idx)) == [1, 2] and index.verify() == []


def test_failure_mid_write_leaves_the_previous_generation(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    (corpus / "gpt2.txt").write_text("Changed text about something else entirely.\n")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(faiss_index, "write", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build(corpus, idx, embedder)
    monkeypatch.undo()
    assert rows(Index.load(idx, embedder=embedder)) == before
    assert build(corpus, idx, embedder).build_report.changed == 1


def test_disk_full_is_one_line_and_keeps_the_index(corpus, tmp_path, embedder, monkeypatch):
    import errno

    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    (corpus / "gpt2.txt").write_text("Changed text.\n")

    def full(path, save):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_file", full)
    with pytest.raises(IndexError_, match="no space left on the device .*the index is unchanged: generation 1"):
        build(corpus, idx, embedder)
    monkeypatch.undo()
    assert rows(Index.load(idx)) == before and sorted(store.gen_dirs(idx)) == [1]

    real_connect = store.connect

    def tiny(*args, **kwargs):  # a database that cannot grow: SQLite's own "database or disk is full"
        db = real_connect(*args, **kwargs)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    write_docs(corpus, {"big.md": "A new document with enough text to need new pages. " * 200})
    monkeypatch.setattr(store, "connect", tiny)
    with pytest.raises(IndexError_, match="no space left on the device"):
        build(corpus, idx, embedder)
    monkeypatch.undo()
    assert rows(Index.load(idx)) == before


def test_directory_is_fsynced_after_the_commit(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    synced: list[Path] = []
    real = store.fsync_dir
    monkeypatch.setattr(store, "fsync_dir", lambda folder: synced.append(Path(folder)) or real(folder))
    (corpus / "gpt2.txt").unlink()
    build(corpus, idx, embedder)
    assert synced.count(idx.resolve()) >= 2  # after the new generation is written, and after the old is removed


# --- damage: one line naming the file, and `rag index` repairs it -----------------------------


def _damage_cases(idx: Path):
    gen = store.gen_dir(idx, 1)

    def truncate(path: Path, keep: float = 0.5):
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    def set_manifest(text: str):
        db = sqlite3.connect(idx / store.META)
        db.execute("UPDATE generations SET manifest = ?", (text,))
        db.commit()
        db.close()

    return {
        "truncated meta.sqlite": (lambda: truncate(idx / store.META, 0.3), "meta.sqlite"),
        "garbage meta.sqlite": (lambda: (idx / store.META).write_bytes(b"not a database" * 100), "meta.sqlite"),
        "manifest []": (lambda: set_manifest("[]"), "meta.sqlite"),
        "manifest null": (lambda: set_manifest("null"), "meta.sqlite"),
        "manifest without keys": (lambda: set_manifest('{"format": "rag-index", "format_version": 2}'), "meta.sqlite"),
        "truncated index.faiss": (
            lambda: truncate(gen / "base-000" / "index.faiss"),
            "gen-000001/base-000/index.faiss",
        ),
        "missing index.faiss": (lambda: (gen / "base-000" / "index.faiss").unlink(), "gen-000001/base-000/index.faiss"),
        "truncated bm25 rows": (
            lambda: truncate(gen / "base-000" / "bm25" / "rows.npy"),
            "gen-000001/base-000/bm25/rows.npy",
        ),
        "garbage deleted ids": (lambda: (gen / "deleted.npy").write_bytes(b"junk"), "gen-000001/deleted.npy"),
    }


@pytest.mark.parametrize("case", list(_damage_cases(Path("x"))))
def test_damage_is_one_line_then_rag_index_repairs_it(corpus, tmp_path, embedder, case):
    from click.testing import CliRunner

    from rag.cli import main

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    damage, name = _damage_cases(idx)[case]
    damage()
    runner = CliRunner()
    results = [
        runner.invoke(main, ["search", "GPT-2 context", "--index", str(idx), "--retriever", "hybrid"]),
        runner.invoke(main, ["info", "--index", str(idx)]),
    ]
    for result in results:
        assert result.exit_code == 1, (case, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert name in lines[0] and "damaged" in lines[0] and "run `rag index FOLDER" in lines[0], lines[0]
    repaired = runner.invoke(main, ["index", str(corpus), "--index", str(idx), "-q"])
    assert repaired.exit_code == 0, repaired.output
    index = Index.load(idx)
    assert index.search("GPT-2 context window", k=1, retriever="hybrid")[0].doc_path == "gpt2.txt"
    assert len(index) == 5 and index.verify() == []


def test_mismatched_parts_are_caught(corpus, tmp_path, embedder):
    from click.testing import CliRunner

    from rag.cli import main

    idx, other = tmp_path / "idx", tmp_path / "other"
    build(corpus, idx, embedder)
    build(corpus, other, embedder)  # same documents, its own chunk ids
    gen = store.gen_dir(idx, 1)
    faiss_file = gen / "base-000" / "index.faiss"
    original = faiss_file.read_bytes()
    faiss_file.write_bytes((store.gen_dir(other, 1) / "base-000" / "index.faiss").read_bytes())
    with pytest.raises(IndexError_, match="base-000/index.faiss: its ids are not this index's chunks"):
        Index.load(idx)
    faiss_file.write_bytes(original)

    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF  # inside a vector: FAISS reads it without complaint
    faiss_file.write_bytes(bytes(flipped))
    quick = CliRunner().invoke(main, ["info", "--index", str(idx)])
    assert quick.exit_code == 0 and "healthy" not in quick.output and "--check" in quick.output
    full = CliRunner().invoke(main, ["info", "--index", str(idx), "--check"])
    assert full.exit_code == 1 and "damaged: gen-000001/base-000/index.faiss: its checksum differs" in full.output
    advice = full.output.strip().splitlines()[-1]
    assert f"run `rag index FOLDER --index {idx.resolve()}`" in advice and "--rebuild" not in advice
    faiss_file.write_bytes(original)

    ids_file = gen / "base-000" / "bm25" / "chunk_ids.npy"
    ids = np.load(ids_file)
    np.save(ids_file, ids[::-1].copy())  # reordered: same ids, wrong rows
    problems = Index.load(idx).verify()
    assert problems == ["gen-000001/base-000/bm25/chunk_ids.npy: its checksum differs from the one recorded"]
    np.save(ids_file, ids)

    db = sqlite3.connect(idx / store.META)
    db.execute("UPDATE chunks SET start = start + 1 WHERE doc_path = 'bert.md'")
    db.commit()
    db.close()
    assert Index.load(idx).verify() == ["meta.sqlite: 1 chunk rows do not match their checksums"]
    assert build(corpus, idx, embedder, rebuild=True).verify() == []  # the advised fix repairs it

    (idx / store.META).write_bytes((other / store.META).read_bytes())  # meta.sqlite from the other index
    with pytest.raises(IndexError_, match="base-000/index.faiss: its ids are not this index's chunks"):
        Index.load(idx)


def test_format_1_index_is_upgraded_without_embedding(corpus, tmp_path, embedder, monkeypatch):
    import json

    idx = tmp_path / "v1"
    idx.mkdir()
    db = sqlite3.connect(idx / "meta.sqlite")
    db.executescript(
        'CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc_path TEXT, start INTEGER, "end" INTEGER, '
        "first_line INTEGER, last_line INTEGER, text TEXT, sha256 TEXT, vector BLOB);"
    )
    fresh = build(corpus, tmp_path / "fresh", embedder)
    for path, start, end, text, vector in rows(fresh):
        import hashlib

        db.execute(
            'INSERT INTO chunks(doc_path, start, "end", first_line, last_line, text, sha256, vector) '
            "VALUES (?,?,?,1,1,?,?,?)",
            (path, start, end, text, hashlib.sha256(text.encode()).hexdigest(), vector),
        )
    db.commit()
    db.close()
    (idx / "index.faiss").write_bytes(b"old faiss")
    (idx / "manifest.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "embedder": "sentence-transformers/all-MiniLM-L6-v2",
                "index_type": "flat",
                "chunking": {"tokens": 200, "overlap": 40},
                "source": str(corpus.resolve()),
                "counts": {"documents": 5},
            }
        )
    )
    with pytest.raises(IndexError_, match="older rag .format 1.: run `rag index FOLDER"):
        Index.load(idx)
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder)
    assert encoded.texts == [] and index.build_report.chunks_reused == 5
    assert "upgraded from index format 1" in index.build_report.summary()
    assert {p.name for p in idx.iterdir()} == {"rag-index.json", "meta.sqlite", "write.lock", "gen-000001"}
    assert rows(index) == rows(fresh) and index.verify() == []


def test_meta_sqlite_found_damaged_mid_build_is_rebuilt_from_the_folder(corpus, tmp_path, embedder, monkeypatch):
    import rag.build

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "gpt2.txt").write_text("Changed text about GPT-2's tokeniser.\n")
    real, calls = rag.build.embed.embed_pending, []

    def malformed_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(*args, **kwargs)

    monkeypatch.setattr(rag.build.embed, "embed_pending", malformed_once)
    warnings: list[str] = []
    index = Index.build(corpus, idx, embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert len(calls) == 2 and any("meta.sqlite is damaged (database disk image is malformed)" in w for w in warnings)
    assert index.manifest.generation == 1 and len(index) == 5 and index.verify() == []
    assert "tokeniser" in index.search("GPT-2 tokeniser", k=1)[0].text


# --- real folders: unreadable folders, links, devices, huge files, crashing loaders -----------------


def test_an_unreadable_folder_is_a_warning_and_its_documents_are_kept(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    real_scandir = os.scandir

    def denied(path="."):  # chmod 000 would not stop root, which CI may be
        if os.fspath(path).endswith("/t5"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    warnings: list[str] = []
    index = Index.build(corpus, idx, embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert "t5/t5.rst" in index.documents() and index.build_report.removed == 0
    assert (
        "skipped folder t5/: cannot read this folder (permission denied) (kept its 1 previously indexed documents)"
        in warnings
    )
    assert ("t5/", "cannot read this folder (permission denied)") in index.build_report.skipped


def test_symbolic_links_are_followed_only_when_asked(corpus, tmp_path, embedder):
    outside = write_docs(
        tmp_path / "outside", {"far.md": "A far-away document about quokkas.\n", "sub/deep.md": "Deep down.\n"}
    )
    (corpus / "linked.md").symlink_to(outside / "far.md")
    (corpus / "linked-folder").symlink_to(outside, target_is_directory=True)
    (outside / "sub" / "loop").symlink_to(outside, target_is_directory=True)  # a loop, once followed
    (corpus / "zero.txt").symlink_to("/dev/zero")
    warnings: list[str] = []
    index = Index.build(corpus, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert not any(p.startswith("linked") for p in index.documents())
    assert "skipped linked.md: a symbolic link (rag index --follow-symlinks follows links)" in warnings
    assert "skipped folder linked-folder/: a symbolic link (rag index --follow-symlinks follows links)" in warnings
    followed = Index.build(
        corpus, tmp_path / "idx2", embedder=embedder, follow_symlinks=True, warn=warnings.append, notify=lambda m: None
    )
    assert {"linked.md", "linked-folder/far.md", "linked-folder/sub/deep.md"} <= set(followed.documents())
    assert not any("loop" in p for p in followed.documents())  # the loop is not walked again
    assert ("zero.txt", "not a regular file (a FIFO, socket or device)") in followed.build_report.skipped


def test_files_above_the_size_limit_are_skipped_with_the_flag_named(corpus, tmp_path, embedder):
    (corpus / "big.txt").write_text("word " * 300_000)  # 1.5 MB
    index = build(corpus, tmp_path / "idx", embedder, max_file_mb=1)
    assert ("big.txt", "2 MB, larger than --max-file-mb 1: raise it to index this file") in index.build_report.skipped
    assert "big.txt" not in index.documents()


def test_a_crashing_loader_skips_its_file_not_the_run(corpus, tmp_path, embedder, monkeypatch):
    import rag.loaders

    real = rag.loaders.text_of

    def crash(data, suffix, warn=None):
        if suffix == ".html":
            raise RuntimeError("the parser fell over")
        return real(data, suffix, warn)

    monkeypatch.setattr(rag.loaders, "text_of", crash)
    rag.loaders._DECODERS.clear()
    index = build(corpus, tmp_path / "idx", embedder)
    rag.loaders._DECODERS.clear()
    assert ("faiss.html", "could not be read (RuntimeError: the parser fell over)") in index.build_report.skipped
    assert len(index.documents()) == 4


def test_bad_utf8_in_a_file_is_a_warning_naming_it(corpus, tmp_path, embedder):
    (corpus / "notes.md").write_bytes("Café notes — résumé ".encode() + b"\xff" + b" and more.\n")
    warnings: list[str] = []
    index = Index.build(corpus, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert any(w.startswith("notes.md: not valid UTF-8: 1 bad byte sequence") for w in warnings)
    assert "résumé \ufffd and more" in index.search("Café notes résumé", k=1)[0].text


def test_a_large_text_file_is_streamed_to_the_same_chunks(tmp_path, embedder, monkeypatch):
    import rag.build

    paragraphs = [f"Paragraph {i}: the encoder reads, the decoder writes, café {i}." for i in range(60)]
    text = "\r\n\r\n".join(paragraphs) + "\r\n"
    folder = write_docs(tmp_path / "docs", {"big.txt": text.encode("cp1252"), "small.md": "Small.\n"})
    whole = build(folder, tmp_path / "whole", embedder, chunk_tokens=40, overlap=5)
    monkeypatch.setattr(rag.build.plan, "STREAM_BYTES", 100)  # everything above 100 bytes is streamed
    opened: list[str] = []
    real_stream = rag.build.plan.stream_text
    monkeypatch.setattr(
        rag.build.plan, "stream_text", lambda open_file, warn: opened.append("big") or real_stream(open_file, warn)
    )
    streamed = build(folder, tmp_path / "streamed", embedder, chunk_tokens=40, overlap=5)
    assert opened == ["big"] and rows(streamed) == rows(whole) and len(rows(whole)) > 10
    assert "café 7." in streamed.search("Paragraph 7", k=1, retriever="bm25")[0].text  # decoded as cp1252

    (folder / "big.txt").write_bytes(b"\x00\x01binary" * 50)  # now binary: skipped, the old version kept
    again = build(folder, tmp_path / "streamed", embedder)
    assert ("big.txt", "binary file (contains NUL bytes)") in again.build_report.skipped
    assert rows(again) == rows(whole)


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivfpq"])
def test_many_segments_of_every_index_type(tmp_path, hash_embedder, monkeypatch, index_type):
    """A corpus large enough for ivfpq, in segments of 400 chunks: built, then updated by a merge
    that rewrites the segment holding deleted chunks, links the others and appends the new ones."""
    from rag import segments

    monkeypatch.setattr(segments, "SEGMENT_CHUNKS", 400)
    monkeypatch.setattr(segments, "MERGE_FRACTION", 0.0)
    docs = {f"d{i:04d}.txt": f"document {i} says word{i} and word{i % 7}\n" for i in range(1600)}
    folder = write_docs(tmp_path / "docs", docs)
    index = build(folder, tmp_path / "idx", hash_embedder, index_type=index_type)
    assert index.manifest.counts["segments"] == [400, 400, 400, 400] and index.verify() == []
    for i in (5, 6, 7):  # all in the first segment
        (folder / f"d{i:04d}.txt").unlink()
    write_docs(folder, {f"new{i}.txt": f"a new document with newword{i}\n" for i in range(150)})
    updated = build(folder, tmp_path / "idx", hash_embedder)
    counts = updated.manifest.counts
    assert counts["segments"] == [397, 400, 400, 400, 150] and counts["chunks"] == 1747 and updated.verify() == []
    untouched = store.gen_dir(tmp_path / "idx", 1) / "base-001" / "index.faiss"  # linked
    assert (store.gen_dir(tmp_path / "idx", 2) / "base-001" / "index.faiss").stat().st_ino == untouched.stat().st_ino
    assert updated.search("newword42", k=1, retriever="bm25")[0].doc_path == "new42.txt"
    assert updated.search("word6", k=5, retriever="bm25") and "d0006.txt" not in {
        p.doc_path for p in updated.search("document 6 says word6", k=20, retriever="bm25")
    }
    vector = hash_embedder.encode(["document 1000 says word1000 and word6\n".strip()])
    [[(chunk, _)]] = updated.dense_hits(vector, 1)
    assert updated.passages([chunk], [1.0])[0].doc_path == "d1000.txt" or index_type != "flat"
