"""The index under attack: a killed or concurrent --rebuild, damage that keeps file sizes, lost
markers, odd folders and queries, permissions and a full disk. Each test asserts what is on
disk and on screen afterwards."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, write_docs, write_qa_set
from test_index import CountingEncode, _run_killed, build, corpus, rows  # noqa: F401 (corpus: a fixture)

from rag import build as build_module
from rag import segments, store
from rag.cli import main
from rag.index import Index


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(result, *needles: str) -> str:
    """The single error line of a failed command, holding every needle."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def live_chunks(index: Index) -> int:
    return len(index.live_ids())


# --- --rebuild is a new generation: the working index is never taken away ----------------------


def test_rebuild_is_a_new_generation_reusing_stored_vectors(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder, rebuild=True)
    assert encoded.texts == [] and index.build_report.chunks_reused == 5
    assert index.manifest.generation == 2 and sorted(store.gen_dirs(idx)) == [1, 2]  # readers of 1 keep it
    assert [r[:4] for r in rows(index)] == [r[:4] for r in before] and index.verify() == []


def test_rebuild_re_embeds_a_stored_vector_whose_checksum_fails(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    db = sqlite3.connect(idx / store.META)
    db.execute("UPDATE vectors SET vector = zeroblob(length(vector)) WHERE rowid = (SELECT MIN(rowid) FROM vectors)")
    db.commit()
    db.close()
    assert Index.load(idx).verify() == ["meta.sqlite: 1 stored vectors do not match their checksums"]
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder, rebuild=True)  # what `info --check` advises
    assert len(encoded.texts) == 1 and index.verify() == []


KILL_POINTS = ["embedding", "writing", "commit", "finish"]


@pytest.mark.parametrize("where", KILL_POINTS)
def test_killed_rebuild_leaves_the_old_generation_searchable_and_resumes(
    corpus, tmp_path, embedder, monkeypatch, where
):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    # --chunk-tokens 16 makes new chunk texts, so the rebuild has vectors to embed; one per
    # call, committed every call (CHECKPOINT_SECONDS 0: the time rule, not the count, commits).
    kill = {
        "embedding": textwrap.dedent("""
            real = TorchEmbedder.encode
            calls = []
            def encode(self, texts, **kw):
                calls.append(texts)
                if len(calls) == 3:
                    os._exit(9)
                return real(self, texts, **kw)
            TorchEmbedder.encode = encode
        """),
        "writing": "segments.SegmentWriter._write_all = lambda *a, **k: os._exit(9)\n",
    }.get(where, f"setattr(build.ledger.Ledger, {where!r}, lambda *a, **k: os._exit(9))\n")
    proc = _run_killed(
        "from rag import segments\nbuild.embed.EMBED_SLICE, build.embed.CHECKPOINT_SECONDS = 1, 0.0\n"
        + kill
        + f"Index.build({str(corpus)!r}, {str(idx)!r}, rebuild=True, chunk_tokens=16, overlap=4, backend='torch', warn=lambda m: None)\n"
    )
    assert proc.returncode == 9, proc.stderr
    loaded = Index.load(idx, embedder=embedder)
    if where == "finish":  # killed after the commit: the new generation, whole
        assert loaded.manifest.generation == 2 and loaded.manifest.chunking["tokens"] == 16
    else:
        assert loaded.manifest.generation == 1 and rows(loaded) == before
    assert loaded.search("GPT-2 context window", k=1, retriever="hybrid")[0].doc_path == "gpt2.txt"
    assert loaded.verify() == []
    checked = cli("info", "--index", idx, "--check")
    assert checked.exit_code == 0 and "healthy" in checked.output, checked.output
    loaded.close()

    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder, rebuild=True, chunk_tokens=16, overlap=4)
    new_texts = {r[3] for r in rows(index)} - {r[3] for r in before}  # short documents keep their one chunk
    if where == "embedding":  # two vectors were committed before the kill: only the rest is embedded
        assert len(new_texts) > 3 and len(encoded.texts) == len(new_texts) - 2
    else:  # every vector was committed before the kill
        assert encoded.texts == []
    assert index.manifest.chunking["tokens"] == 16 and index.verify() == []
    assert index.search("GPT-2 context window", k=1, retriever="hybrid")[0].doc_path == "gpt2.txt"


def test_a_small_first_build_killed_after_seconds_keeps_its_work(corpus, tmp_path, embedder, monkeypatch):
    """EMBED_BATCH is far above the corpus: only the time rule commits before the kill."""
    idx = tmp_path / "idx"
    proc = _run_killed(f"""
        import time
        build.embed.EMBED_SLICE, build.embed.CHECKPOINT_SECONDS = 1, 0.5
        real = TorchEmbedder.encode
        calls = []
        def encode(self, texts, **kw):
            calls.append(texts)
            if len(calls) == 4:
                os._exit(9)
            time.sleep(0.6)
            return real(self, texts, **kw)
        TorchEmbedder.encode = encode
        Index.build({str(corpus)!r}, {str(idx)!r}, backend="torch", warn=lambda m: None)
    """)
    assert proc.returncode == 9, proc.stderr
    encoded = CountingEncode(monkeypatch, embedder)
    index = build(corpus, idx, embedder)
    assert len(encoded.texts) == 2 and index.build_report.chunks_reused == 3 and index.verify() == []


def test_searches_during_a_rebuild_all_succeed(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    started = tmp_path / "started"
    code = f"""
        import time
        from pathlib import Path
        build.embed.EMBED_SLICE = 1
        real = TorchEmbedder.encode
        def encode(self, texts, **kw):
            Path({str(started)!r}).touch()
            time.sleep(0.4)
            return real(self, texts, **kw)
        TorchEmbedder.encode = encode
        Index.build({str(corpus)!r}, {str(idx)!r}, rebuild=True, chunk_tokens=16, overlap=4, backend="torch", warn=lambda m: None)
        print("done")
    """
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from rag import build
        from rag.embedders.st import TorchEmbedder
        from rag.index import Index
    """) + textwrap.dedent(code)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not started.exists():
            assert proc.poll() is None and time.time() < deadline, (
                proc.stderr.read() if proc.poll() is not None else "slow"
            )
            time.sleep(0.05)
        searched = []
        while proc.poll() is None and len(searched) < 8:
            index = Index.load(idx, embedder=embedder)
            hits = index.search("GPT-2 context window", k=1, retriever="hybrid")
            searched.append((index.manifest.generation, hits[0].doc_path))
            index.close()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "done" in out, err
    assert len(searched) >= 3 and all(path == "gpt2.txt" for _, path in searched), searched
    assert {gen for gen, _ in searched} <= {1, 2}
    after = Index.load(idx, embedder=embedder)
    assert after.manifest.generation == 2 and after.manifest.chunking["tokens"] == 16 and after.verify() == []


def test_rebuild_with_another_embedder_keeps_the_old_one_until_it_commits(
    corpus, tmp_path, embedder, hash_embedder, monkeypatch
):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    monkeypatch.setattr(build_module.embed, "EMBED_SLICE", 1)
    monkeypatch.setattr(build_module.embed, "CHECKPOINT_SECONDS", 0.0)
    calls = []
    real = type(hash_embedder).encode

    def failing(self, texts, **kw):
        calls.append(list(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C on the third batch: two are committed
        return real(self, texts, **kw)

    monkeypatch.setattr(type(hash_embedder), "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        build(corpus, idx, hash_embedder, rebuild=True)
    old = Index.load(idx)  # still the first embedder's generation, searchable with it
    assert old.manifest.embedder == embedder.name and rows(old) == before and old.verify() == []
    assert old.search("GPT-2 context window", k=1)[0].doc_path == "gpt2.txt"
    old.close()

    notes: list[str] = []
    Index.build(corpus, idx, embedder=embedder, warn=lambda m: None, notify=notes.append)  # a plain update meanwhile
    assert any("interrupted `rag index --rebuild --embedder stand-in/hash-32` left 2 vectors" in n for n in notes), (
        notes
    )

    monkeypatch.setattr(type(hash_embedder), "encode", real)
    encoded = CountingEncode(monkeypatch, hash_embedder)
    index = build(corpus, idx, hash_embedder, rebuild=True)
    assert len(encoded.texts) == 3 and index.build_report.chunks_reused == 2  # resumed from the two committed
    assert index.manifest.embedder == hash_embedder.name and index.manifest.dimension == 32 and index.verify() == []
    db = sqlite3.connect(idx / store.META)
    assert {length for (length,) in db.execute("SELECT DISTINCT length(vector) FROM vectors")} == {4 * 32}
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'next_vectors'").fetchone() is None
    db.close()


def test_rebuild_may_take_documents_from_another_folder(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    other = write_docs(tmp_path / "other", {"new.md": "Mamba is a state space model, not a transformer.\n"})
    refused = cli("index", other, "--index", idx, "-q")
    one_line(refused, "holds documents from", "--rebuild")
    index = build(other, idx, embedder, rebuild=True)
    assert index.documents() == ["new.md"] and index.manifest.source == str(other.resolve()) and index.verify() == []


# --- damage that keeps file sizes: the advised `rag index FOLDER` repairs it, embedding nothing ------


NINE = [
    "base-000/index.faiss",
    "delta/index.faiss",
    *(f"base-000/bm25/{f}" for f in ("chunk_ids.npy", "lengths.npy", "term_ptr.npy", "rows.npy", "tfs.npy")),
    "delta/bm25/chunk_ids.npy",
    "deleted.npy",
]


def _with_delta(corpus: Path, idx: Path, embedder, monkeypatch) -> Path:
    """An index whose current generation has a delta segment and a deleted id."""
    monkeypatch.setattr(segments, "MERGE_FRACTION", 1e9)
    build(corpus, idx, embedder)
    (corpus / "gpt2.txt").write_text(
        "GPT-2 is a decoder-only language model with a context window of 1024 tokens, released in 2019.\n"
    )
    index = build(corpus, idx, embedder)
    assert index.manifest.counts["delta"] == 1 and index.manifest.counts["deleted"] == 1
    return store.gen_dir(idx, index.manifest.generation)


@pytest.mark.parametrize("name", NINE)
def test_same_size_garbage_is_repaired_by_plain_rag_index_without_embedding(
    corpus, tmp_path, embedder, monkeypatch, name
):
    idx = tmp_path / "idx"
    gen = _with_delta(corpus, idx, embedder, monkeypatch)
    path = gen / name
    size = path.stat().st_size
    path.write_bytes(random.Random(name).randbytes(size))
    assert path.stat().st_size == size
    for result in (
        cli("search", "GPT-2 context", "--index", idx, "--retriever", "hybrid"),
        cli("info", "--index", idx),
    ):
        one_line(result, "damaged", "run `rag index FOLDER")
    repaired = cli("index", corpus, "--index", idx, "--json")
    assert repaired.exit_code == 0, repaired.output
    report = json.loads(repaired.output[repaired.output.index("{") :])
    assert report["chunks_embedded"] == 0 and report["generation"] == 3
    index = Index.load(idx)
    assert index.verify() == [] and len(index) == 5
    assert index.search("GPT-2 context window", k=1, retriever="hybrid")[0].doc_path == "gpt2.txt"
    assert cli("info", "--index", idx, "--check").exit_code == 0


def test_a_flipped_vector_is_found_by_the_next_update_and_written_again(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    faiss_file = store.gen_dir(idx, 1) / "base-000" / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a vector: FAISS reads it, the ids are right
    faiss_file.write_bytes(bytes(data))
    warnings: list[str] = []
    encoded = CountingEncode(monkeypatch, embedder)
    index = Index.build(corpus, idx, embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert encoded.texts == [] and index.manifest.generation == 2 and index.verify() == []
    assert any("base-000/index.faiss is missing or damaged (its checksum differs" in w for w in warnings), warnings


def test_a_faiss_file_changed_in_place_is_called_damaged_not_copied(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    faiss_file = store.gen_dir(idx, 1) / "base-000" / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[-20] ^= 0x01  # inside the id map at the end: a different id
    faiss_file.write_bytes(bytes(data))
    line = one_line(
        cli("search", "BERT", "--index", idx), "base-000/index.faiss", "checksum differs", "run `rag index FOLDER"
    )
    assert "copied" not in line
    assert cli("index", corpus, "--index", idx, "-q").exit_code == 0 and Index.load(idx).verify() == []


# --- advice that works from the state it is given in ---------------------------------------------


@pytest.mark.parametrize("marker", ["missing", "{}", "garbage"])
def test_a_lost_marker_is_restored_by_the_command_the_message_names(corpus, tmp_path, embedder, marker):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    path = idx / store.MARKER
    if marker == "missing":
        path.unlink()
    else:
        path.write_text(marker if marker != "garbage" else "\x00\x01 not json")
    one_line(cli("search", "BERT", "--index", idx), "lost its marker", f"rag index FOLDER --index {idx}")
    fixed = cli("index", corpus, "--index", idx, "-q")
    assert fixed.exit_code == 0, fixed.output
    assert store.is_ours(idx) and Index.load(idx).verify() == []


def test_a_damaged_marker_beside_foreign_files_is_refused_untouched(tmp_path, corpus):
    folder = write_docs(tmp_path / "mine", {"rag-index.json": "{}", "notes.txt": "mine\n", "meta.sqlite": "mine"})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    one_line(cli("index", corpus, "--index", folder, "-q"), "cannot be proven to be a rag index")
    one_line(cli("search", "x", "--index", folder), "not a rag index")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_meta_sqlite_from_another_index_is_repaired_by_following_the_messages(corpus, tmp_path, embedder):
    idx, other = tmp_path / "idx", tmp_path / "other"
    build(corpus, idx, embedder)
    elsewhere = write_docs(tmp_path / "elsewhere", {"x.md": "Something else entirely, about state space models.\n"})
    build(elsewhere, other, embedder)
    shutil.copyfile(other / store.META, idx / store.META)
    one_line(cli("search", "BERT", "--index", idx), "damaged", "run `rag index FOLDER")
    second = cli("index", corpus, "--index", idx, "-q")  # the index holds the other folder's documents now
    one_line(second, "holds documents from", "--rebuild")
    third = cli("index", corpus, "--index", idx, "-q", "--rebuild")
    assert third.exit_code == 0, third.output
    index = Index.load(idx)
    assert index.verify() == [] and "bert.md" in index.documents()


# --- what the folder walk passes over, and how deep it goes --------------------------------------


def test_a_users_rag_index_json_does_not_hide_its_folder(tmp_path, embedder):
    docs = write_docs(
        tmp_path / "docs",
        {"data/rag-index.json": "{}", "data/notes.md": "Notes about BERT.\n", "top.md": "Top-level text.\n"},
    )
    warnings: list[str] = []
    index = Index.build(docs, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert index.documents() == ["data/notes.md", "top.md"] and warnings == []


def test_a_real_index_inside_the_folder_is_passed_over_with_one_warning(corpus, tmp_path, embedder):
    build(corpus, tmp_path / "elsewhere", embedder)
    shutil.copytree(tmp_path / "elsewhere", corpus / "old-index")
    warnings: list[str] = []
    index = Index.build(corpus, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert not any(p.startswith("old-index") for p in index.documents())
    assert [w for w in warnings if "old-index" in w] == [
        "skipped folder old-index/: a rag index (its rag-index.json marker): not indexed as documents"
    ]


def test_a_folder_nested_1200_deep_is_walked_without_recursion(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    fd = os.open(docs, os.O_RDONLY)
    for _ in range(1200):  # one level at a time, relative to the last (no long path, no recursion)
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    with os.fdopen(os.open("bottom.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
        f.write("The deepest note mentions transformers.\n")
    os.close(fd)
    (docs / "top.md").write_text("A note at the top.\n")
    try:
        result = cli("index", docs, "--index", tmp_path / "idx", "-q", "--backend", "torch")
        assert result.exit_code == 0, result.output[-500:]
        documents = Index.load(tmp_path / "idx").documents()
        assert len(documents) == 2 and documents[0].endswith("/d/bottom.md") and documents[0].count("/") == 1200
    finally:
        remove_deep(docs)  # pytest's own clean-up of old temporary folders recurses, and would fail on it


def remove_deep(top: Path) -> None:
    """Remove a chain of nested `d` folders without recursion: lift each grandchild up a level."""
    while (child := top / "d").is_dir():
        for entry in child.iterdir():
            if entry.name != "d":
                entry.unlink()
        if (child / "d").is_dir():
            os.rename(child / "d", top / "d.next")
            os.rmdir(child)
            os.rename(top / "d.next", child)
        else:
            os.rmdir(child)


# --- one line instead of a traceback ---------------------------------------------------------------


def test_a_query_that_is_not_utf8_is_one_line(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    one_line(cli("search", "caf\udce9", "--index", idx), "not valid UTF-8", "byte 0xe9")
    one_line(cli("ask", "caf\udce9?", "--index", idx), "not valid UTF-8")
    rag = Path(sys.executable).parent / "rag"
    if rag.exists():  # the bytes as a shell passes them
        proc = subprocess.run(
            [str(rag), "search", b"caf\xe9", "--index", str(idx)],
            capture_output=True,
            timeout=120,
            env={**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        )
        assert proc.returncode == 1 and b"Traceback" not in proc.stderr and b"not valid UTF-8" in proc.stderr


def test_an_unreadable_meta_sqlite_is_a_permission_problem(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    before = (idx / store.META).read_bytes()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: False if str(path).endswith(store.META) else real(path, mode, **kw)
    )
    for result in (
        cli("search", "BERT", "--index", idx),
        cli("info", "--index", idx),
        cli("index", corpus, "--index", idx, "-q"),
    ):
        line = one_line(result, "permission denied", "meta.sqlite")
        assert "damaged" not in line.replace("not damaged", "")
    monkeypatch.undo()
    assert (idx / store.META).read_bytes() == before and Index.load(idx).verify() == []


def test_no_write_access_to_the_index_folder_is_one_line(corpus, tmp_path, embedder, monkeypatch):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    before = {p.name for p in idx.iterdir()}
    real = os.open

    def denied(path, *args, **kwargs):
        if str(path).endswith(store.LOCK):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    one_line(cli("index", corpus, "--index", idx, "-q"), "cannot write in the index folder", "permission denied")
    monkeypatch.undo()
    assert {p.name for p in idx.iterdir()} == before and Index.load(idx).verify() == []


def test_an_unreadable_onnx_cache_is_said_once_and_torch_embeds(corpus, tmp_path, monkeypatch):
    from rag.config import DEFAULT_EMBEDDER
    from rag.embedders.onnx import EXPORT, export_folder

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    target = export_folder(DEFAULT_EMBEDDER)
    target.mkdir(parents=True)
    (target / EXPORT).write_text("{}")  # another user's export, which this one may not read
    (target / "private").mkdir()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: False if str(path).startswith(str(target)) else real(path, mode, **kw)
    )
    result = cli("index", corpus, "--index", tmp_path / "idx", "--backend", "onnx-fp32")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert result.output.count("the ONNX export cache cannot be used") == 1, result.output
    assert "could not be read" not in result.output
    index = Index.load(tmp_path / "idx")
    assert index.manifest.backend == "torch" and len(index.documents()) == 5
    assert index.search("GPT-2 context window", k=1)[0].doc_path == "gpt2.txt"


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["open", "write", "sqlite"])
def test_disk_full_three_times_is_one_line_each_and_keeps_the_index(corpus, tmp_path, embedder, monkeypatch, where):
    idx = tmp_path / "idx"
    before = rows(build(corpus, idx, embedder))
    write_docs(corpus, {"big.md": "A new document with enough text to need new pages in the database. " * 300})
    real_open, real_connect, real_save = open, store.connect, np.save

    def patched_open(file, mode="r", *args, **kwargs):
        if "x" in mode and "gen-" in str(file):
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *args, **kwargs)

    def tiny(*args, **kwargs):
        db = real_connect(*args, **kwargs)
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        return db

    for attempt in range(3):
        with monkeypatch.context() as m:
            if where == "open":
                m.setattr("builtins.open", patched_open)
            elif where == "write":
                m.setattr(np, "save", lambda *a, **k: _enospc())
            else:
                m.setattr(store, "connect", tiny)
            one_line(
                cli("index", corpus, "--index", idx, "-q"), "no space left on the device", "the index is unchanged"
            )
        assert rows(Index.load(idx)) == before and sorted(store.gen_dirs(idx)) == [1], attempt
    assert np.save is real_save
    assert build(corpus, idx, embedder).build_report.added == 1


def test_disk_full_on_a_real_tmpfs(corpus, tmp_path, embedder):
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("needs root and tmpfs mounts (run as root on Linux to check a real full disk)")
    try:
        idx = mount / "idx"
        before = rows(build(corpus, idx, embedder))
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)  # fill what is left, unbuffered
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        write_docs(corpus, {"big.md": "A new document that will not fit on this small disk. " * 2000})
        for _ in range(3):
            one_line(cli("index", corpus, "--index", idx, "-q"), "no space left on the device")
            assert rows(Index.load(idx)) == before
        filler.unlink()
        assert build(corpus, idx, embedder).build_report.added == 1
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --- small things a user reads -------------------------------------------------------------------


def test_huge_bm25_weight_prints_a_short_score(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    result = cli("search", "GPT-2 context", "--index", idx, "--retriever", "hybrid", "--bm25-weight", "1e308")
    assert result.exit_code == 0 and max(len(line) for line in result.output.splitlines()) < 200, result.output
    assert "e+30" in result.output


def test_a_bm25_query_matching_nothing_does_not_call_the_index_empty(corpus, tmp_path, embedder):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    result = cli("search", "zyxwvut", "--index", idx, "--retriever", "bm25")
    assert result.exit_code == 0 and "index is empty" not in result.output and "BM25 finds nothing" in result.output


def test_bench_where_no_answerer_loads_exits_non_zero_and_claims_no_results(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    qa = write_qa_set(
        tmp_path / "mini",
        {"a.md": "BERT is pre-trained with masked language modelling.\n"},
        [
            {
                "id": "q1",
                "question": "What is BERT pre-trained with?",
                "answer": "masked language modelling",
                "doc": "a.md",
            }
        ],
    )
    out = tmp_path / "out"
    result = cli("bench", qa, "-g", tmp_path / "no-such-model", "--out", out, "-q")
    assert result.exit_code == 1, result.output
    assert "no question was answered" in result.output and "Traceback" not in result.output
    assert not (out / "results.jsonl").exists() and "results.jsonl" not in result.output


def test_transaction_does_not_roll_back_twice(tmp_path):
    db = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    with pytest.raises(OSError, match="No space"):
        with store.transaction(db):
            db.execute("INSERT INTO t VALUES (1)")
            db.execute("ROLLBACK")  # as SQLite does by itself on SQLITE_FULL
            _enospc()
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


# --- bytes flipped inside the BM25 arrays: never a silent change of ranking where a check is cheap ---


def _flip_posting(idx: Path, array: str, word: str = "gpt") -> None:
    """Flip the high byte of the first posting of `word` in base-000's `array` (rows or tfs)."""
    db = sqlite3.connect(idx / store.META)
    term = db.execute("SELECT id FROM terms WHERE term = ?", (word,)).fetchone()[0]
    db.close()
    folder = store.gen_dir(idx, 1) / "base-000" / "bm25"
    start = int(np.load(folder / "term_ptr.npy")[term])
    path = folder / array
    data = bytearray(path.read_bytes())
    offset = len(data) - 4 * len(np.load(path)) + 4 * start + 3  # the data follows the .npy header
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("array", ["chunk_ids.npy", "lengths.npy", "term_ptr.npy", "rows.npy", "tfs.npy"])
def test_bytes_flipped_in_bm25_arrays_are_one_line_then_repaired(corpus, tmp_path, embedder, array):
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    path = store.gen_dir(idx, 1) / "base-000" / "bm25" / array
    if array in ("rows.npy", "tfs.npy"):
        _flip_posting(idx, array)
    else:
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x01  # inside the last entry
        path.write_bytes(bytes(data))
    one_line(
        cli("search", "GPT-2 context", "--index", idx, "--retriever", "bm25"),
        "damaged",
        f"base-000/bm25/{array}",
        "run `rag index FOLDER",
    )
    assert cli("index", corpus, "--index", idx, "-q").exit_code == 0
    index = Index.load(idx)
    assert index.verify() == [] and index.search("GPT-2 context", k=1, retriever="bm25")[0].doc_path == "gpt2.txt"
