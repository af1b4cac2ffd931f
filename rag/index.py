"""Build, update, save, load and search an index of a document folder.

Building is incremental: a file whose content hash is unchanged keeps its chunks
and vectors; only new and changed files are chunked and embedded, and chunks of
deleted files are dropped. Every save goes through `store.staged_folder`, so the
previous index survives any interruption.
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import faiss_index, lexical, store
from .chunking import chunk_document
from .config import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS, default_index_dir
from .documents import Chunk, Document, Passage
from .embedder import Embedder, canonical_name
from .errors import IndexError_, LoadError, RagError
from .loaders import SUPPORTED_SUFFIXES, load_text, walk
from .retrieve import Hits, Retriever, as_retriever, rank


@dataclass
class Source:
    """One document to index: its id (relative path), content hash, and how to get its text."""

    path: str
    sha256: str
    size: int
    mtime: float
    load: Callable[[], str]


@dataclass
class BuildReport:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.chunks} chunks: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s"
        ) + "".join(f"; {note}" for note in self.notes)


def folder_sources(folder: Path, skip: Sequence[Path] = ()) -> Iterable[Source]:
    """Sources for the supported files under `folder`; unreadable files still yield (they fail on load)."""
    for path in walk(folder, tuple(skip)):
        rel = path.relative_to(folder).as_posix()
        try:
            data = path.read_bytes()
            stat = path.stat()
            digest, size, mtime = hashlib.sha256(data).hexdigest(), stat.st_size, stat.st_mtime
        except OSError as e:
            reason = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
            yield Source(rel, "", 0, 0.0, lambda reason=reason: _raise(LoadError(reason)))
            continue
        yield Source(rel, digest, size, mtime, lambda path=path: load_text(path))


def _raise(error: Exception):
    raise error


def document_sources(documents: Iterable[Document]) -> Iterable[Source]:
    """Sources for in-memory documents (benchmark corpora): the id is `Document.path`."""
    for doc in documents:
        data = doc.text.encode("utf-8")
        yield Source(doc.path, hashlib.sha256(data).hexdigest(), len(data), 0.0, lambda text=doc.text: text)


class Index:
    """A loaded index: FAISS vectors plus chunk metadata, searchable by text."""

    def __init__(self, path: Path, manifest: dict, faiss, db: sqlite3.Connection, embedder: Embedder):
        self.path = path
        self.manifest = manifest
        self.faiss = faiss
        self.db = db
        self.embedder = embedder
        self.build_report: BuildReport | None = None
        self._bm25: lexical.Bm25 | None = None  # loaded on first lexical search

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        folder: str | Path,
        index_dir: str | Path | None = None,
        *,
        embedder: str | Embedder | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_CHUNK_OVERLAP,
        index_type: str = "flat",
        progress: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> Index:
        """Index (or update the index of) every supported file under `folder`."""
        folder = Path(folder)
        if not folder.is_dir():
            raise RagError(f"{folder} is not a folder: give the folder of documents to index")
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        skip = [index_dir, store.old_path(index_dir), *store.temp_paths(index_dir)]
        return cls.build_from_sources(
            folder_sources(folder, skip), index_dir, source=str(folder.resolve()), embedder=embedder,
            chunk_tokens=chunk_tokens, overlap=overlap, index_type=index_type, progress=progress, warn=warn,
        )

    @classmethod
    def build_from_documents(cls, documents: Iterable[Document], index_dir: str | Path, **options) -> Index:
        """Index in-memory documents (e.g. a benchmark's paragraphs), incrementally like a folder."""
        return cls.build_from_sources(document_sources(documents), Path(index_dir), source="<documents>", **options)

    @classmethod
    def build_from_sources(
        cls,
        sources: Iterable[Source],
        index_dir: Path,
        *,
        source: str,
        embedder: str | Embedder | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_CHUNK_OVERLAP,
        index_type: str = "flat",
        progress: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> Index:
        started = time.perf_counter()
        warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        emb = embedder if isinstance(embedder, Embedder) else Embedder(embedder)
        if index_type not in faiss_index_types():
            raise RagError(f"unknown index type {index_type!r}: use one of {', '.join(faiss_index_types())}")
        if not 0 <= overlap < chunk_tokens:
            raise RagError(f"--overlap must be at least 0 and below --chunk-tokens ({chunk_tokens}), got {overlap}")
        chunking = {"tokens": chunk_tokens, "overlap": overlap, "tokenizer": emb.name}

        with store.write_lock(index_dir):
            previous = store.find_index(index_dir)
            old_manifest = store.read_manifest(previous) if previous else None
            if old_manifest and old_manifest["counts"]["documents"] and old_manifest.get("source") != source:
                raise IndexError_(
                    f"index {index_dir} holds documents from {old_manifest.get('source')}, not {source}: "
                    "choose another --index folder for this one, or delete the old index first"
                )
            if old_manifest and old_manifest["embedder"] != emb.name:
                raise IndexError_(
                    f"index {index_dir} was built with embedder {old_manifest['embedder']!r}, not {emb.name!r}: "
                    "pass the same --embedder, or choose another --index folder"
                )
            old_db = store.open_meta(previous) if previous else None
            rechunk = old_manifest is not None and old_manifest.get("chunking") != chunking
            old_docs = {} if old_db is None else {
                row[0]: row[1] for row in old_db.execute("SELECT path, sha256 FROM documents")
            }
            report = BuildReport()
            keep: list[str] = []          # documents whose chunks are copied as they are
            fresh: list[tuple[Source, list[Chunk]]] = []
            seen: set[str] = set()
            bar = _progress(sources, "Reading", progress)
            for src in bar:
                seen.add(src.path)
                old_hash = old_docs.get(src.path)
                if old_hash is not None and old_hash == src.sha256 and not rechunk:
                    keep.append(src.path)
                    report.unchanged += 1
                    continue
                try:
                    text = src.load()
                except LoadError as e:
                    report.skipped.append((src.path, str(e)))
                    if old_hash is not None:
                        keep.append(src.path)
                        warn(f"skipped {src.path}: {e} (kept its previously indexed version)")
                    else:
                        warn(f"skipped {src.path}: {e}")
                    continue
                chunks = chunk_document(Document(src.path, text), emb.tokenizer, chunk_tokens, overlap)
                if not chunks:
                    report.skipped.append((src.path, "no text in it"))
                    warn(f"skipped {src.path}: no text in it")
                    continue
                fresh.append((src, chunks))
                if old_hash is None:
                    report.added += 1
                else:
                    report.changed += 1
            report.removed = len(set(old_docs) - seen)
            if not seen and not old_docs:
                raise RagError(f"no supported documents in {source}: rag reads {', '.join(sorted(SUPPORTED_SUFFIXES))}")
            if not fresh and not keep and not old_docs:
                raise RagError(f"none of the {len(seen)} supported files in {source} could be read (see the warnings)")
            if old_manifest and not old_manifest.get("bm25"):
                report.notes.append("BM25 index added (built before BM25 existed)")
            elif old_manifest and not lexical.compatible(old_manifest["bm25"]):
                report.notes.append("BM25 index rebuilt with the current tokeniser and parameters")
            if (old_manifest and not fresh and not report.removed and not rechunk
                    and old_manifest["index_type"] == index_type and lexical.compatible(old_manifest.get("bm25"))):
                old_db.close()
                report.documents, report.chunks = old_manifest["counts"]["documents"], old_manifest["counts"]["chunks"]
                return cls._loaded(index_dir, emb, report, started)  # nothing changed: keep the files as they are
            texts = [c.text for _, chunks in fresh for c in chunks]
            if texts and chunk_tokens + 2 > emb.max_tokens:
                warn(f"chunks of {chunk_tokens} tokens exceed the embedder's {emb.max_tokens}-token input: the rest is truncated")
            vectors = emb.encode(texts, show_progress=progress)
            report.chunks_embedded = len(texts)
            dimension = old_manifest["dimension"] if old_manifest and not texts else emb.dimension

            with store.staged_folder(index_dir) as tmp:
                db = store.create_meta(tmp)
                if old_db is not None:
                    _copy_documents(db, previous / store.META, keep)
                    old_db.close()
                rows = iter(vectors)
                for src, chunks in fresh:
                    db.execute(
                        "INSERT INTO documents(path, sha256, size, mtime, chunks) VALUES (?,?,?,?,?)",
                        (src.path, src.sha256, src.size, src.mtime, len(chunks)),
                    )
                    db.executemany(
                        'INSERT INTO chunks(doc_path, start, "end", first_line, last_line, text, sha256, vector) '
                        "VALUES (?,?,?,?,?,?,?,?)",
                        [
                            (c.doc_path, c.start, c.end, c.first_line, c.last_line, c.text,
                             hashlib.sha256(c.text.encode()).hexdigest(), store.vector_blob(next(rows)))
                            for c in chunks
                        ],
                    )
                db.commit()
                ids, all_vectors, all_texts = store.all_chunks(db, dimension)
                index, params = faiss_index.build(index_type, ids, all_vectors, dimension)
                import faiss

                faiss.write_index(index, str(tmp / store.FAISS_FILE))
                lexical.build(ids, all_texts, tmp)
                report.documents = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                report.chunks = len(ids)
                db.close()
                now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                manifest = {
                    "format_version": store.FORMAT_VERSION,
                    "embedder": emb.name,
                    "dimension": dimension,
                    "normalized": True,
                    "metric": "inner_product",
                    "index_type": index_type,
                    "index_params": params,
                    "chunking": chunking,
                    "bm25": lexical.settings(),
                    "source": source,
                    "counts": {"documents": report.documents, "chunks": report.chunks},
                    "created": (old_manifest or {}).get("created", now),
                    "updated": now,
                }
                store.write_manifest(tmp, manifest)
        return cls._loaded(index_dir, emb, report, started)

    @classmethod
    def _loaded(cls, index_dir: Path, emb: Embedder, report: BuildReport, started: float) -> Index:
        report.seconds = time.perf_counter() - started
        index = cls.load(index_dir, embedder=emb)
        index.build_report = report
        return index

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def load(cls, index_dir: str | Path | None = None, embedder: str | Embedder | None = None) -> Index:
        """Open an index; refuses one built with another embedder or format version."""
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        folder = store.find_index(index_dir)
        if folder is None:
            raise IndexError_(f"no index at {index_dir}: build one with `rag index FOLDER --index {index_dir}`")
        manifest = store.read_manifest(folder)
        if embedder is None:
            emb = Embedder(manifest["embedder"])
        else:
            emb = embedder if isinstance(embedder, Embedder) else Embedder(embedder)
            if emb.name != manifest["embedder"]:
                raise IndexError_(
                    f"index {index_dir} was built with embedder {manifest['embedder']!r}, not {emb.name!r}: "
                    "search it without --embedder, or rebuild it with the embedder you want"
                )
        import faiss

        try:
            vectors = faiss.read_index(str(folder / store.FAISS_FILE))
        except RuntimeError:
            raise IndexError_(f"cannot read {folder / store.FAISS_FILE}: rebuild the index with `rag index FOLDER`") from None
        if vectors.d != manifest["dimension"]:
            raise IndexError_(f"index {index_dir} is damaged: its vectors have {vectors.d} dimensions, the manifest says {manifest['dimension']}")
        faiss_index.configure(vectors, manifest["index_type"], manifest.get("index_params", {}))
        return cls(folder, manifest, vectors, store.open_meta(folder), emb)

    # -- searching ------------------------------------------------------------------------------

    def check_embedder(self) -> None:
        if self.embedder.dimension != self.manifest["dimension"]:
            raise IndexError_(
                f"embedder {self.embedder.name!r} gives {self.embedder.dimension}-dimensional vectors, but index "
                f"{self.path} holds {self.manifest['dimension']}-dimensional ones: rebuild the index with this embedder"
            )

    def search(self, query: str, k: int = 5, retriever: Retriever | str | None = None) -> list[Passage]:
        """The k best chunks for `query`, best first (dense by default; see `rag.retrieve`)."""
        return self.search_many([query], k, retriever=retriever)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 5, progress: bool = False, retriever: Retriever | str | None = None
    ) -> list[list[Passage]]:
        """Batched search: one encode call for all queries, one FAISS search, one BM25 pass."""
        if k < 1:
            raise RagError(f"k must be at least 1, got {k}")
        if any(not q.strip() for q in queries):
            raise RagError("the query is empty: give some text to search for")
        hits = rank(self, list(queries), k, as_retriever(retriever), progress)
        return [self.passages([i for i, _ in row], [s for _, s in row]) for row in hits]

    # The primitives `rag.retrieve` combines.

    def embed_queries(self, queries: Sequence[str], progress: bool = False):
        self.check_embedder()
        return self.embedder.encode(list(queries), show_progress=progress)

    def dense_hits(self, vectors, k: int) -> list[Hits]:
        """Per query vector, the k nearest chunks by cosine similarity."""
        scores, ids = self.faiss.search(vectors, min(k, max(self.faiss.ntotal, 1)))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0] for row_ids, row_scores in zip(ids, scores)]

    @property
    def has_bm25(self) -> bool:
        return bool(self.manifest.get("bm25"))

    def lexical_hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        """Per query, the k best chunks by BM25."""
        if self._bm25 is None:
            if not self.has_bm25:
                raise IndexError_(
                    f"index {self.path} was built before BM25 support and has dense vectors only: "
                    "run `rag index FOLDER` on it again to add BM25 (nothing is re-embedded), or use --retriever dense"
                )
            if not lexical.compatible(self.manifest["bm25"]):
                raise IndexError_(
                    f"index {self.path} has a BM25 index built with other settings ({self.manifest['bm25'].get('tokenizer')}): "
                    "run `rag index FOLDER` on it again to rebuild BM25 (nothing is re-embedded), or use --retriever dense"
                )
            self._bm25 = lexical.Bm25.load(self.path)
        return self._bm25.search_many(queries, k)

    def chunk_vectors(self, ids: Sequence[int]):
        """The stored unit vectors of chunks, in the order of `ids`."""
        import numpy as np

        marks = ",".join("?" * len(ids))
        rows = dict(self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", [int(i) for i in ids]))
        return np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])

    def passages(self, ids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        """Passages for FAISS ids (in the given order; -1 ids are ignored)."""
        wanted = [int(i) for i in ids if i >= 0]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = {
            row[0]: row
            for row in self.db.execute(
                f'SELECT id, doc_path, text, start, "end", first_line, last_line FROM chunks WHERE id IN ({marks})',
                wanted,
            )
        }
        out = []
        for i, score in zip(ids, scores):
            if int(i) in rows:
                cid, path, text, start, end, first, last = rows[int(i)]
                out.append(Passage(cid, path, text, start, end, first, last, float(score), len(out) + 1))
        return out

    # -- describing -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.faiss.ntotal)

    def documents(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT path FROM documents ORDER BY path")]

    def close(self) -> None:
        self.db.close()


def faiss_index_types() -> tuple[str, ...]:
    from .config import INDEX_TYPES

    return INDEX_TYPES


def _copy_documents(db: sqlite3.Connection, old_meta: Path, paths: list[str]) -> None:
    """Copy the rows of unchanged documents and their chunks (with vectors) from the previous index."""
    db.execute("ATTACH DATABASE ? AS old", (str(old_meta),))
    db.execute("CREATE TEMP TABLE keep(path TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO keep VALUES (?)", [(p,) for p in paths])
    db.execute("INSERT INTO documents SELECT * FROM old.documents WHERE path IN (SELECT path FROM keep)")
    db.execute("INSERT INTO chunks SELECT * FROM old.chunks WHERE doc_path IN (SELECT path FROM keep)")
    db.commit()
    db.execute("DETACH DATABASE old")


def _progress(items: Iterable, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)
