"""Build or update an index: plan what changed, embed only what must be, commit one generation.

1. plan: a file whose size and modification time are as recorded is unchanged without being
   read (`rehash` reads every file). Others are hashed; new and changed ones are loaded and
   chunked, and their chunks go into meta.sqlite as pending rows, invisible to readers.
2. embed: each pending chunk whose text has no vector in this index yet is embedded. Vectors
   are kept by chunk text, so a moved file, or the unchanged paragraphs of an edited one, cost
   nothing. Vectors are committed every EMBED_BATCH chunks or CHECKPOINT_SECONDS, whichever
   comes first: a build killed after seconds resumes with what it embedded.
3. write: the next generation's FAISS and BM25 files are made from the previous generation's
   (removing the chunks of changed and deleted files, adding the pending ones) and fsynced;
   then one SQLite transaction makes the pending rows live, retires the replaced ones and
   records the generation with its manifest. That commit is the switch; generations older than
   the previous one are deleted after it.

`--rebuild` is an update like any other: every document is read and chunked again and the
search files are written from scratch, but in the same meta.sqlite, as a new generation that
readers see only once it commits; stored vectors whose checksums hold are reused. With another
embedder the new vectors go into a table of their own (`next_vectors`, a checkpoint a killed
rebuild resumes from) that replaces `vectors` in the commit. Before an update, the current
generation's files are checked against their recorded checksums; damaged ones are written
again from the stored vectors and text (nothing is embedded).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import lexical, store
from .chunking import chunk_stream
from .config import DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, DEFAULT_MAX_FILE_MB, INDEX_TYPES
from .documents import Document
from .embedder import Embedder, canonical_name, default_backend, is_embedder, load_embedder
from .errors import IndexError_, IndexPermission, LoadError, RagError
from .loaders import SUPPORTED_SUFFIXES, TEXT_SUFFIXES, decoder, stream_text, walk_relative
from .manifest import Manifest
from .segments import SegmentWriter
from .stored import StoredChunks

STREAM_BYTES = 8_000_000  # text files larger than this are hashed, decoded and chunked a block at a time
EMBED_BATCH = 512  # chunks embedded and committed together at most: the granularity of resuming
EMBED_SLICE = 256  # chunks given to the embedder at once (length-sorted, so batches pad little): ~3 s here
CHECKPOINT_SECONDS = 5.0  # embedded vectors are committed at least this often: a short build killed keeps its work
PLAN_COMMIT = 2000  # pending chunk rows per transaction while planning
RACY_NS = 2_000_000_000  # a file modified this close to when it was hashed is hashed again
LEGACY_DB = "legacy-v1.sqlite"  # a format-1 index's meta.sqlite while it is being upgraded


@dataclass
class Source:
    """One document to index: its id (relative path), size and mtime, and how to read it."""

    path: str
    size: int
    mtime_ns: int
    read: Callable[[], bytes]  # the raw bytes (raises LoadError)
    decode: Callable[..., str]  # (bytes, warn) -> the text of those bytes (raises LoadError)
    folder: bool = False  # a folder that could not be read: the documents indexed under it are kept
    open: Callable[[], BinaryIO] | None = None  # the file, for reading a large one a block at a time


@dataclass
class BuildOptions:
    """How to build. None means: as the index records it, else the default."""

    embedder: str | Embedder | None = None  # a name, or an embedder object (torch or ONNX)
    backend: str | None = None  # torch, onnx (int8) or onnx-fp32; None: the index's, else the default
    chunk_tokens: int | None = None
    overlap: int | None = None
    index_type: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    rehash: bool = False  # read and hash every file, even those whose size and mtime are unchanged
    follow_symlinks: bool = False  # index what symbolic links point at (files and folders, loops skipped)
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB  # larger files are skipped with a warning
    rebuild: bool = False  # build every document again (a new generation; stored vectors reused), source and embedder may change
    progress: bool = False
    warn: Callable[[str], None] | None = None
    notify: Callable[[str], None] | None = None  # one-line notices: what a changed option rebuilds


@dataclass
class BuildReport:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_embedded: int = 0
    chunks_reused: int = 0  # new chunk rows whose text already had a vector
    documents: int = 0
    chunks: int = 0
    generation: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.chunks} chunks: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks_embedded} chunks embedded, {self.chunks_reused} reused, in {self.seconds:.1f}s"
        ) + "".join(f"; {note}" for note in self.notes)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


# -- sources --------------------------------------------------------------------------------------


def folder_sources(folder: Path, skip: Iterable[Path] = (), follow_symlinks: bool = False,
                   max_file_mb: float | None = DEFAULT_MAX_FILE_MB) -> Iterable[Source]:
    """Sources for the supported files under `folder` (never inside a rag index folder). What
    cannot be used still yields, failing when read, so it is skipped with its reason: a file that
    cannot be stat'ed, is not a regular file (a FIFO, a device) or is larger than `max_file_mb`,
    a symbolic link not followed; a folder that cannot be read yields a `folder` source."""
    limit = None if max_file_mb is None else int(max_file_mb * 1e6)
    for found in walk_relative(folder, tuple(skip), follow_symlinks):
        rel = found.path
        decode = decoder(rel[rel.rfind("."):])
        if found.problem is not None:
            yield Source(rel, -1, -1, _failing(found.problem), decode, folder=found.folder)
            continue
        path = found.entry.path
        try:
            info = found.entry.stat()
        except OSError as e:
            yield Source(rel, -1, -1, _failing(_os_reason(e)), decode)
            continue
        if not stat.S_ISREG(info.st_mode):
            yield Source(rel, -1, -1, _failing("not a regular file (a FIFO, socket or device)"), decode)
        elif limit is not None and info.st_size > limit:
            yield Source(rel, -1, -1, _failing(f"{info.st_size / 1e6:.0f} MB, larger than --max-file-mb "
                                               f"{max_file_mb:g}: raise it to index this file"), decode)
        else:
            yield Source(rel, info.st_size, info.st_mtime_ns, lambda path=path: _read(path), decode,
                         open=lambda path=path: open(path, "rb"))


def document_sources(documents: Iterable[Document]) -> Iterable[Source]:
    """Sources for in-memory documents (benchmark corpora): the id is `Document.path`."""
    for doc in documents:
        data = doc.text.encode("utf-8")
        yield Source(doc.path, len(data), 0, lambda data=data: data, lambda data, warn=None: data.decode("utf-8"))


def _file_digest(source: Source, progress: bool) -> str:
    """The sha256 of a large file, read a block at a time."""
    digest = hashlib.sha256()
    bar = _bar(source.size, f"Hashing {source.path[-30:]}", progress, "B")
    with source.open() as f:
        while block := f.read(1 << 20):
            digest.update(block)
            if bar is not None:
                bar.update(len(block))
    if bar is not None:
        bar.close()
    return digest.hexdigest()


def _bar_over(chunks: Iterable, source: Source, progress: bool) -> Iterator:
    """Yield the chunks of a large file, moving a bar by how far into the text they reach."""
    bar = _bar(source.size, f"Chunking {source.path[-30:]}", progress, "B")
    if bar is None:
        yield from chunks
        return
    for chunk in chunks:
        yield chunk
        bar.update(max(0, min(source.size, chunk.end) - bar.n))  # characters for bytes: close enough for a bar
    bar.update(source.size - bar.n)
    bar.close()


def _problem(source: Source) -> str:
    try:
        source.read()
    except LoadError as e:
        return str(e)
    return "skipped"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise LoadError(_os_reason(e)) from None


def _os_reason(error: OSError) -> str:
    return "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))


def _failing(reason: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise LoadError(reason)

    return read


# -- the build ------------------------------------------------------------------------------------


def build(sources: Callable[[], Iterable[Source]], index_dir: Path, source: str, options: BuildOptions) -> BuildReport:
    """Index the documents `sources()` yields into `index_dir` (created, or updated
    incrementally; see the module doc). `sources` is called again if a damaged meta.sqlite
    forces a second pass from scratch."""
    started = time.perf_counter()
    path = store.resolve(index_dir)
    store.claim(path)
    with store.write_lock(path):
        builder = _Builder(path, source, options)
        try:
            report = builder.run(sources())
        except sqlite3.DatabaseError as e:
            builder.close()
            if store.is_disk_full(e):
                raise builder.disk_full() from None
            if not store.is_corrupt(e) or builder.fresh:
                raise
            # A meta.sqlite that turns out damaged mid-way: start again from the documents alone.
            builder.warn(f"{path / store.META} is damaged ({e}): rebuilding the index from {source}")
            builder = _Builder(path, source, BuildOptions(**{**options.__dict__, "rebuild": True}), wipe=True)
            report = builder.run(sources())
        except OSError as e:
            builder.close()
            if store.is_disk_full(e):
                raise builder.disk_full() from None
            raise
        finally:
            builder.close()
    report.seconds = time.perf_counter() - started
    return report


def build_folder(folder: Path, index_dir: Path, options: BuildOptions) -> BuildReport:
    """Index (or update the index of) the documents under `folder`."""
    if str(folder).strip() == "" or not Path(folder).exists():
        raise RagError(f"folder {folder} does not exist: give the folder of documents to index")
    if not Path(folder).is_dir():
        raise RagError(f"{folder} is a file, not a folder: give the folder of documents to index")
    folder = Path(folder)
    skip = (Path(index_dir),)  # the index being written, if it lies inside the folder: passed over silently
    return build(lambda: folder_sources(folder, skip, follow_symlinks=options.follow_symlinks, max_file_mb=options.max_file_mb),
                 index_dir, str(folder.resolve()), options)


class _Builder:
    """One write to one index, under its lock."""

    def __init__(self, path: Path, source: str, options: BuildOptions, wipe: bool = False) -> None:
        self.path, self.source, self.options, self.wipe = path, source, options, wipe
        self.rebuild = options.rebuild
        self.vectors = "vectors"  # the table new vectors go into: next_vectors while a rebuild changes the embedder
        self.warn = options.warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self.notify = options.notify or (lambda message: print(message, file=sys.stderr))
        self.report = BuildReport()
        self.db: sqlite3.Connection | None = None
        self.fresh = False  # meta.sqlite was created by this run
        self.prev: Manifest | None = None
        self.new_gen_dir: Path | None = None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def disk_full(self) -> IndexError_:
        if self.new_gen_dir is not None:
            store.remove_gen_dir(self.new_gen_dir)
        where = f"generation {self.prev.generation}" if self.prev else "no generation yet"
        return IndexError_(
            f"no space left on the device of {self.path} while updating the index: free some space and run "
            f"`rag index` again (the index is unchanged: {where})"
        )

    # -- opening and recovering ---------------------------------------------------------------

    def open(self) -> None:
        path = self.path
        if self.wipe:
            self._wipe()
        if (path / store.LEGACY_MANIFEST).is_file() and (path / store.META).is_file() and not (path / LEGACY_DB).exists():
            os.replace(path / store.META, path / LEGACY_DB)  # a format-1 index: see _upgrade_legacy
        if not (path / store.META).exists():
            self._create()
        else:
            try:
                self.db = store.connect(path, writer=True)
                row = store.current_generation(self.db)
                self.prev = Manifest.from_json(row[1]) if row else None
            except (IndexError_, ValueError, sqlite3.DatabaseError) as e:
                if isinstance(e, IndexPermission) or (isinstance(e, sqlite3.DatabaseError) and not store.is_corrupt(e)):
                    raise
                self.warn(f"{path / store.META} is damaged ({e}): rebuilding the index from {self.source}")
                self._wipe()
                self._create()
        db = self.db
        # A killed run leaves pending rows (dropped: the plan makes them again) and the vectors it
        # embedded (kept: they are the checkpoint), and asks for a sweep of unused vectors after.
        self.sweep_vectors = db.execute("SELECT 1 FROM state WHERE key = 'building'").fetchone() is not None
        with store.transaction(db):
            db.execute("DELETE FROM chunks WHERE gen_added IS NULL")
        current = self.prev.generation if self.prev else 0
        for number, folder in store.gen_dirs(path).items():
            if number > current or number < current - 1:  # a killed run's, or one a crash left behind
                store.remove_gen_dir(folder)
        self._upgrade_legacy()

    def _create(self) -> None:
        self.fresh = True
        for folder in store.gen_dirs(self.path).values():
            store.remove_gen_dir(folder)
        self.db = store.connect(self.path, create=True)
        store.seed_chunk_ids(self.db)
        self.prev = None

    def _wipe(self) -> None:
        """Remove rag's own files from the (marked) index folder: only for a meta.sqlite found damaged."""
        self.close()
        for folder in store.gen_dirs(self.path).values():
            store.remove_gen_dir(folder)
        for name in (store.META, store.META + "-journal"):
            (self.path / name).unlink(missing_ok=True)

    def _upgrade_legacy(self) -> None:
        """A format-1 index in this folder: take its vectors (by chunk text) and settings, then
        remove its files, so the first format-2 build embeds nothing that was embedded before."""
        legacy_db = self.path / LEGACY_DB
        manifest_path = self.path / store.LEGACY_MANIFEST
        if not legacy_db.exists() and not manifest_path.is_file():
            return
        if manifest_path.is_file():
            try:
                legacy = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                legacy = {}
            with store.transaction(self.db):
                self.db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('legacy_manifest', ?)",
                                (json.dumps(legacy),))
        if legacy_db.exists():
            try:
                old = sqlite3.connect(f"{legacy_db.as_uri()}?mode=ro", uri=True)
                rows = old.execute("SELECT sha256, vector, text FROM chunks").fetchall()
                old.close()
            except sqlite3.DatabaseError:
                rows = []
            terms = self._term_blobs([lexical.tokenize(text) for _, _, text in rows])
            with store.transaction(self.db):
                self.db.executemany(
                    "INSERT OR IGNORE INTO vectors(sha256, vector, terms, digest) VALUES (?,?,?,?)",
                    [(sha, vec, term, store.vector_digest(vec, term)) for (sha, vec, _), term in zip(rows, terms)],
                )
        for name in ("index.faiss", "bm25", store.LEGACY_MANIFEST):
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        self.report.notes.append("upgraded from index format 1 (stored vectors reused)")

    def recorded(self) -> dict:
        """The settings the index was built with: its manifest's, or a format-1 index's."""
        if self.prev is not None:
            m = self.prev
            return {"embedder": m.embedder, "chunk_tokens": m.chunking["tokens"], "overlap": m.chunking["overlap"],
                    "index_type": m.index_type, "source": m.source, "documents": m.counts["documents"],
                    "backend": m.backend}
        row = self.db.execute("SELECT value FROM state WHERE key = 'legacy_manifest'").fetchone()
        if row is None:
            return {}
        legacy = json.loads(row[0]) or {}
        chunking = legacy.get("chunking") or {}
        return {"embedder": legacy.get("embedder"), "chunk_tokens": chunking.get("tokens"),
                "overlap": chunking.get("overlap"), "index_type": legacy.get("index_type"),
                "source": legacy.get("source"), "documents": (legacy.get("counts") or {}).get("documents", 0)}

    # -- settings -----------------------------------------------------------------------------

    def settle(self) -> None:
        """Resolve the options against what the index records, and say what a change costs."""
        o, rec = self.options, self.recorded()
        given = o.embedder.name if is_embedder(o.embedder) else o.embedder
        name = canonical_name(given if given is not None else rec.get("embedder"))
        if rec.get("embedder") and name != rec["embedder"] and not self.rebuild:
            raise IndexError_(
                f"index {self.path} was built with embedder {rec['embedder']!r}, not {name!r}: pass the same "
                f"--embedder, add --rebuild to embed everything again with {name!r}, or choose another --index folder"
            )
        if rec.get("documents") and rec.get("source") != self.source and not self.rebuild:
            raise IndexError_(
                f"index {self.path} holds documents from {rec.get('source')}, not {self.source}: add --rebuild to "
                "replace them with these, or choose another --index folder for this one"
            )
        self.backend = getattr(o.embedder, "backend", None) if is_embedder(o.embedder) else None
        self.backend = self.backend or _choose(o.backend, rec.get("backend"), default_backend())
        self.emb = o.embedder if is_embedder(o.embedder) else load_embedder(
            name, self.backend, batch_size=o.batch_size, notify=self.notify)
        self.backend = getattr(self.emb, "backend", None) or self.backend  # torch, where an ONNX cache was unusable
        if self.prev is not None and rec.get("backend") and self.backend != rec["backend"]:
            self.notify(
                f"--backend {self.backend} differs from the index's {rec['backend']}: new chunks are embedded with "
                f"{self.backend}, stored vectors are kept (the backends' vectors agree to a cosine of 0.99)"
            )
        self.chunk_tokens = _choose(o.chunk_tokens, rec.get("chunk_tokens"), DEFAULT_CHUNK_TOKENS)
        self.overlap = _choose(o.overlap, rec.get("overlap"), DEFAULT_CHUNK_OVERLAP)
        self.index_type = _choose(o.index_type, rec.get("index_type"), "flat")
        if self.index_type not in INDEX_TYPES:
            raise RagError(f"unknown index type {self.index_type!r}: use one of {', '.join(INDEX_TYPES)}")
        if self.chunk_tokens < 1 or not 0 <= self.overlap < self.chunk_tokens:
            raise RagError(f"--overlap must be at least 0 and below --chunk-tokens ({self.chunk_tokens}), got {self.overlap}")
        self.chunking = {"tokens": self.chunk_tokens, "overlap": self.overlap, "tokenizer": self.emb.name}
        self._choose_vector_table(name, rec.get("embedder"))
        self.rechunk = self.rebuild or (bool(rec) and (rec.get("chunk_tokens"), rec.get("overlap"))
                                        != (self.chunk_tokens, self.overlap))
        if self.rechunk and self.prev is not None and not self.rebuild:
            self.notify(
                f"--chunk-tokens {self.chunk_tokens} --overlap {self.overlap} differ from the index's "
                f"{rec['chunk_tokens']}/{rec['overlap']}: every document is chunked again, and chunks whose text "
                "changed are embedded again"
            )
        if self.prev is not None and self.index_type != rec.get("index_type"):
            self.notify(
                f"--index-type {self.index_type} differs from the index's {rec['index_type']}: the FAISS index is "
                "rebuilt from the stored vectors (nothing is embedded again)"
            )

    def _choose_vector_table(self, name: str, recorded: str | None) -> None:
        """Where new vectors go. `vectors` holds the current generation's embedder's; a rebuild
        with another embedder fills `next_vectors`, kept across a killed run (for that embedder
        only) and swapped in by the commit. Vectors that no generation records (a first build
        killed, then run with another embedder) are dropped."""
        db = self.db
        state = dict(db.execute("SELECT key, value FROM state WHERE key IN ('embedder', 'next_embedder')").fetchall())
        if self.prev is None and state.get("embedder", name) != name:
            with store.transaction(db):
                db.execute("DELETE FROM vectors")
        if self.rebuild and recorded and name != recorded:
            db.execute(store.NEXT_VECTORS_SCHEMA)
            with store.transaction(db):
                if state.get("next_embedder") != name:
                    db.execute("DELETE FROM next_vectors")
                db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('next_embedder', ?)", (name,))
            self.vectors = "next_vectors"
            self.notify(f"--embedder {name} differs from the index's {recorded}: every chunk is embedded again; "
                        f"searches keep using {recorded} until the rebuild commits")
        elif state.get("next_embedder") and not self.rebuild:
            held = db.execute("SELECT COUNT(*) FROM next_vectors").fetchone()[0]
            self.notify(f"an interrupted `rag index --rebuild --embedder {state['next_embedder']}` left {held} "
                        "vectors: run it again to resume it")
        with store.transaction(db):
            db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('embedder', ?)",
                       (recorded if self.vectors == "next_vectors" else name,))

    # -- 1. plan --------------------------------------------------------------------------------

    def run(self, sources: Iterable[Source]) -> BuildReport:
        self.open()
        self.settle()
        db, report = self.db, self.report
        old_docs = {row[0]: row[1:] for row in db.execute("SELECT path, sha256, size, mtime_ns, seen_ns FROM documents")}
        self.old_documents = len(old_docs)
        seen: set[str] = set()
        self.replaced: list[str] = []  # documents whose live chunks this update retires
        self.doc_rows: list[tuple] = []  # documents rows to write at the commit
        self.touched: list[tuple] = []  # (mtime_ns, size, seen_ns, path) of unchanged files re-hashed
        self.pending, self.since_commit = 0, 0
        db.execute("BEGIN IMMEDIATE")
        for src in _progress(sources, "Reading", self.options.progress, "file"):
            if src.folder:  # could not be read, or is a link not followed: what was indexed under it stays
                prefix = "" if src.path == "." else src.path + "/"
                kept = [] if self.rebuild else [p for p in old_docs if p.startswith(prefix)]
                seen.update(kept)
                reason = _problem(src)
                report.skipped.append((src.path + "/", reason))
                self.warn(f"skipped folder {src.path}/: {reason}"
                          + (f" (kept its {len(kept)} previously indexed documents)" if kept else ""))
                continue
            seen.add(src.path)
            old = old_docs.get(src.path)
            if (old is not None and not self.rechunk and not self.options.rehash and old[1] == src.size
                    and old[2] == src.mtime_ns and 0 < src.mtime_ns < old[3] - RACY_NS):
                report.unchanged += 1
                continue
            self.plan_file(src, old)
        db.execute("COMMIT")
        gone = sorted(set(old_docs) - seen)
        self.replaced += gone
        report.removed = len(gone)
        if not seen and not old_docs:
            raise RagError(f"no supported documents in {self.source}: rag reads {', '.join(sorted(SUPPORTED_SUFFIXES))}")
        if self.pending == 0 and not old_docs and report.skipped and len(report.skipped) == len(seen):
            raise RagError(f"none of the {len(seen)} supported files in {self.source} could be read (see the warnings)")
        self.embed(self.pending)
        return self.write()

    def plan_file(self, src: Source, old: tuple | None) -> None:
        """Hash one new or possibly changed file; if it did change, chunk it into pending rows.
        A large text file is read, decoded and chunked a block at a time (memory stays flat)."""
        report, now = self.report, time.time_ns()
        warn = (lambda message, path=src.path: self.warn(f"{path}: {message}"))
        streamed = src.open is not None and src.size > STREAM_BYTES and src.path.lower().endswith(TEXT_SUFFIXES)
        try:
            if streamed:
                digest = _file_digest(src, self.options.progress)
            else:
                data = src.read()
                digest = hashlib.sha256(data).hexdigest()
            if old is not None and old[0] == digest and not self.rechunk:
                report.unchanged += 1
                self.touched.append((src.mtime_ns, src.size, now, src.path))
                return
            pieces = stream_text(src.open, warn) if streamed else [src.decode(data, warn)]
            data = None
            chunks = chunk_stream(pieces, src.path, self.emb.tokenizer, self.chunk_tokens, self.overlap)
            count = self._insert_chunks(_bar_over(chunks, src, self.options.progress) if streamed else chunks)
        except sqlite3.Error:
            raise  # the index's own storage failing is not this file's fault
        except Exception as e:  # no file's loader may stop the run: it is skipped with its reason
            self.db.execute("DELETE FROM chunks WHERE gen_added IS NULL AND doc_path = ?", (src.path,))
            reason = str(e) if isinstance(e, LoadError) else f"could not be read ({type(e).__name__}: {e})"
            report.skipped.append((src.path, reason))
            if old is not None and self.rebuild:  # a rebuild holds only what it could read
                self.replaced.append(src.path)
            kept = " (kept its previously indexed version)" if old is not None and not self.rebuild else ""
            self.warn(f"skipped {src.path}: {reason}{kept}")
            return
        if old is not None:
            self.replaced.append(src.path)
        if not count:
            report.skipped.append((src.path, "no text in it"))
            self.warn(f"skipped {src.path}: no text in it")
            return
        self.doc_rows.append((src.path, digest, src.size, src.mtime_ns, now, count))
        report.changed += old is not None
        report.added += old is None

    def _insert_chunks(self, chunks: Iterable) -> int:
        """Insert chunks as pending rows, committing every PLAN_COMMIT; how many there were."""
        db, count, batch = self.db, 0, []

        def flush() -> None:
            db.executemany(
                'INSERT INTO chunks(doc_path, start, "end", first_line, last_line, text, sha256, digest) '
                "VALUES (?,?,?,?,?,?,?,?)",
                [(c.doc_path, c.start, c.end, c.first_line, c.last_line, c.text, sha,
                  store.chunk_digest(c.doc_path, c.start, c.end, c.first_line, c.last_line, sha))
                 for c in batch for sha in [_text_sha(c.text)]])
            self.pending += len(batch)
            self.since_commit += len(batch)
            batch.clear()
            if self.since_commit >= PLAN_COMMIT:
                db.execute("COMMIT")
                db.execute("BEGIN IMMEDIATE")
                self.since_commit = 0

        for chunk in chunks:
            batch.append(chunk)
            count += 1
            if len(batch) >= 500:
                flush()
        if batch:
            flush()
        return count

    # -- 2. embed -------------------------------------------------------------------------------

    def embed(self, pending: int) -> None:
        """Embed the pending chunks whose text has no vector yet (shortest first, so batches pad
        little), committing every EMBED_BATCH chunks or CHECKPOINT_SECONDS (with their BM25 term
        ids, so no chunk is ever tokenised again). A rebuild reuses a stored vector only when its
        checksum holds."""
        db, table = self.db, self.vectors
        missing = [row[0] for row in db.execute(
            "SELECT c.sha256 FROM chunks c WHERE c.gen_added IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {table} v WHERE v.sha256 = c.sha256) "
            "GROUP BY c.sha256 ORDER BY MIN(length(c.text)), c.sha256")]
        if self.rebuild:
            missing += self._damaged_vectors()
        self.report.chunks_embedded = len(missing)
        self.report.chunks_reused = pending - len(missing)
        if not missing:
            return
        if self.chunk_tokens + 2 > self.emb.max_tokens:
            self.warn(f"chunks of {self.chunk_tokens} tokens exceed the embedder's {self.emb.max_tokens}-token input: the rest is truncated")
        bar = _bar(len(missing), "Embedding", self.options.progress, "chunk")
        step = max(1, min(EMBED_SLICE, EMBED_BATCH))
        done: list[tuple] = []
        last = time.monotonic()
        for start in range(0, len(missing), step):
            shas = missing[start:start + step]
            texts = [db.execute("SELECT text FROM chunks WHERE sha256 = ? LIMIT 1", (sha,)).fetchone()[0] for sha in shas]
            vectors = self.emb.encode(texts)
            terms = self._term_blobs([lexical.tokenize(text) for text in texts])
            done += [(sha, blob, term, store.vector_digest(blob, term))
                     for sha, blob, term in zip(shas, (store.vector_blob(v) for v in vectors), terms)]
            if len(done) >= EMBED_BATCH or time.monotonic() - last >= CHECKPOINT_SECONDS or start + step >= len(missing):
                with store.transaction(db):
                    db.executemany(f"INSERT OR REPLACE INTO {table}(sha256, vector, terms, digest) VALUES (?,?,?,?)", done)
                    db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('building', ?)", (_now(),))
                done, last = [], time.monotonic()
            if bar is not None:
                bar.update(len(shas))
        if bar is not None:
            bar.close()

    def _damaged_vectors(self) -> list[str]:
        """Stored vectors of pending chunks that fail their checksum or have another length."""
        size = 4 * self._dimension()
        return [sha for sha, vector, terms, digest in self.db.execute(
            f"SELECT v.sha256, v.vector, v.terms, v.digest FROM {self.vectors} v "
            "WHERE v.sha256 IN (SELECT sha256 FROM chunks WHERE gen_added IS NULL)")
            if len(vector) != size or store.vector_digest(vector, terms) != digest]

    # -- 3. write -------------------------------------------------------------------------------

    def write(self) -> BuildReport:
        """Write the next generation's files (see `rag.segments`), then commit it."""
        db, prev, report = self.db, self.prev, self.report
        removed = self._live_ids_of(self.replaced)
        new_ids = np.array([row[0] for row in db.execute("SELECT id FROM chunks WHERE gen_added IS NULL")], dtype=np.int64)
        prev_ok = prev is not None and not self.rebuild and self._files_intact(prev)
        bm25_ok = prev_ok and lexical.compatible(prev.bm25)
        same_type = prev is not None and prev.index_type == self.index_type
        if prev is not None and not len(new_ids) and not len(removed) and bm25_ok and same_type and not self.rechunk:
            self._finish(prev.generation)  # nothing changed: no new generation
            report.documents, report.chunks = prev.counts["documents"], prev.counts["chunks"]
            report.generation = prev.generation
            return report
        if prev is not None and prev_ok and not bm25_ok:
            report.notes.append("BM25 index rebuilt with the current tokeniser and parameters")
        gen = (prev.generation if prev else 0) + 1
        folder = self.new_gen_dir = store.new_gen_dir(self.path, gen)
        total = (prev.counts["chunks"] if prev else 0) - len(removed) + len(new_ids)

        writer = SegmentWriter(self.path, folder, self.index_type, StoredChunks(db, self._dimension(), self.vectors),
                               self.warn)
        counts = None
        if prev_ok and bm25_ok and same_type:
            counts, base_gen = writer.delta_update(prev, removed, len(new_ids)), prev.base_generation
        if counts is None:
            counts, base_gen = writer.merge(prev if prev_ok and bm25_ok and same_type else None, removed, total), gen
        files, self.params = writer.files, writer.params
        store.fsync_tree(folder)
        store.fsync_dir(self.path)
        if counts["base"] - counts["deleted"] + counts["delta"] != total:
            raise IndexError_(f"index {self.path}: the new generation would hold {counts['base'] - counts['deleted'] + counts['delta']} "
                              f"chunks, not {total}: run `rag index FOLDER --rebuild` (nothing was changed)")

        documents = self.old_documents - len(self.replaced) + len(self.doc_rows)
        vocab = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM terms").fetchone()[0]
        now = _now()
        manifest = Manifest(
            generation=gen, embedder=self.emb.name, backend=self.backend, dimension=self._dimension(),
            index_type=self.index_type,
            index_params=self.params, chunking=self.chunking, bm25=lexical.settings(), source=self.source,
            counts={"documents": documents, "chunks": total, "terms": vocab, **counts}, files=files,
            id_sum=self._live_id_sum(prev, removed, new_ids), created=prev.created if prev else now, updated=now,
            base_generation=base_gen,
        )
        self._commit(gen, removed, manifest)
        report.documents, report.chunks, report.generation = documents, total, gen
        self._finish(gen)
        return report

    def _commit(self, gen: int, removed: np.ndarray, manifest: Manifest) -> None:
        """The switch: one transaction makes generation `gen` current."""
        db = self.db
        with store.transaction(db):
            db.executemany("UPDATE chunks SET gen_removed = ? WHERE id = ?", [(gen, int(i)) for i in removed])
            db.execute("UPDATE chunks SET gen_added = ? WHERE gen_added IS NULL", (gen,))
            db.executemany("DELETE FROM documents WHERE path = ?", [(p,) for p in self.replaced])
            db.executemany("INSERT OR REPLACE INTO documents(path, sha256, size, mtime_ns, seen_ns, chunks) "
                           "VALUES (?,?,?,?,?,?)", self.doc_rows)
            db.executemany("UPDATE documents SET mtime_ns = ?, size = ?, seen_ns = ? WHERE path = ?", self.touched)
            db.execute("INSERT INTO generations(gen, manifest) VALUES (?, ?)", (gen, manifest.to_json()))
            db.execute("DELETE FROM state WHERE key IN ('building', 'legacy_manifest')")
            if self.vectors == "next_vectors":  # the new embedder's vectors become the index's
                db.execute("DROP TABLE vectors")
                db.execute("ALTER TABLE next_vectors RENAME TO vectors")
                db.execute("DELETE FROM state WHERE key = 'next_embedder'")
                db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('embedder', ?)", (self.emb.name,))
        self.touched = []
        self.new_gen_dir = None
        self.prev = manifest
        self.vectors = "vectors"

    def _finish(self, gen: int) -> None:
        """After the commit: record re-hashed files, drop what no reader of `gen` or `gen - 1` needs."""
        db = self.db
        try:
            with store.transaction(db):
                db.executemany("UPDATE documents SET mtime_ns = ?, size = ?, seen_ns = ? WHERE path = ?", self.touched)
                db.execute("DELETE FROM state WHERE key = 'building'")
                stale = [row[0] for row in db.execute(
                    "SELECT DISTINCT sha256 FROM chunks WHERE gen_removed IS NOT NULL AND gen_removed < ?", (gen,))]
                db.execute("DELETE FROM chunks WHERE gen_removed IS NOT NULL AND gen_removed < ?", (gen,))
                db.execute("DELETE FROM generations WHERE gen < ?", (gen - 1,))
                if self.sweep_vectors:
                    db.execute("DELETE FROM vectors WHERE sha256 NOT IN (SELECT sha256 FROM chunks)")
                else:
                    db.executemany("DELETE FROM vectors WHERE sha256 = ? AND NOT EXISTS "
                                   "(SELECT 1 FROM chunks WHERE chunks.sha256 = vectors.sha256)", [(s,) for s in stale])
            for number, folder in store.gen_dirs(self.path).items():
                if number < gen - 1 or number > gen:
                    store.remove_gen_dir(folder)
            legacy = self.path / LEGACY_DB
            if legacy.exists():
                legacy.unlink()
            store.fsync_dir(self.path)
        except (OSError, sqlite3.Error) as e:  # the new generation is committed; cleaning up can wait
            self.warn(f"could not clean up old generations in {self.path} ({e}): the next `rag index` will")

    # -- helpers ----------------------------------------------------------------------------------

    def _dimension(self) -> int:
        if self.prev is not None and self.prev.embedder == self.emb.name:
            return self.prev.dimension
        row = self.db.execute(f"SELECT vector FROM {self.vectors} LIMIT 1").fetchone()
        return len(row[0]) // 4 if row else self.emb.dimension

    def _live_ids_of(self, paths: list[str]) -> np.ndarray:
        ids: list[int] = []
        for path in paths:
            ids += [row[0] for row in self.db.execute(
                "SELECT id FROM chunks WHERE doc_path = ? AND gen_removed IS NULL AND gen_added IS NOT NULL", (path,))]
        return np.array(sorted(ids), dtype=np.int64)

    def _files_intact(self, prev: Manifest) -> bool:
        """Whether every file of the current generation is there with its recorded size and
        checksum (damage that keeps a file's size included): an update links or reads them."""
        folder = store.gen_dir(self.path, prev.generation)
        for name, info in sorted(prev.files.items()):
            try:
                if (folder / name).stat().st_size != info.get("size"):
                    raise OSError("its size differs from the one recorded")
                if store.file_sha256(folder / name) != info.get("sha256"):
                    raise OSError("its checksum differs from the one recorded")
            except OSError as e:
                why = e.strerror or str(e)
                self.warn(f"{folder / name} is missing or damaged ({why}): the index's FAISS and BM25 files are "
                          "written again from the stored vectors (nothing is embedded again)")
                return False
        return True

    def _live_id_sum(self, prev: Manifest | None, removed: np.ndarray, new_ids: np.ndarray) -> int:
        before = prev.id_sum if prev is not None else 0
        change = store.id_sum(new_ids) - store.id_sum(removed)
        return (before + change) % (1 << 63)

    def _term_blobs(self, token_lists: list[list[str]]) -> list[bytes]:
        """Each token list as int32 term ids; new terms join the (append-only) vocabulary."""
        db = self.db
        listed = sorted({w for tokens in token_lists for w in tokens})
        known: dict[str, int] = {}

        def look_up(words: list[str]) -> None:
            for start in range(0, len(words), 500):
                part = words[start:start + 500]
                known.update(db.execute(f"SELECT term, id FROM terms WHERE term IN ({','.join('?' * len(part))})", part))

        look_up(listed)
        fresh = [w for w in listed if w not in known]
        if fresh:
            with store.transaction(db):
                db.executemany("INSERT INTO terms(term) VALUES (?)", [(w,) for w in fresh])
            look_up(fresh)
        return [np.array([known[w] for w in tokens], dtype=np.int32).tobytes() for tokens in token_lists]


def _choose(given, recorded, default):
    return given if given is not None else (recorded if recorded is not None else default)


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _progress(items: Iterable, desc: str, enabled: bool, unit: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False)


def _bar(total: int, desc: str, enabled: bool, unit: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)
