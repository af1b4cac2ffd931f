"""A loaded index: one generation's FAISS vectors, BM25 postings and chunk rows, searchable by text.

Building and updating live in `rag.build`; the folder and its SQLite store in `rag.store`.
Loading checks what is cheap on every load (the generation's files are there with their
recorded sizes, FAISS holds the recorded number of vectors under the recorded ids) and
`verify` checks everything (`rag info --check`). Any damage is one line naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import lexical, store
from .config import default_index_dir
from .documents import Document, Passage
from .embedders import Embedder, is_embedder, query_embedder
from .embedders.names import canonical_name
from .errors import IndexError_, RagError, require_utf8
from .generation_marker import gen_marker_ok
from .manifest import Manifest
from .retrieve import Hits, Retriever, as_retriever, rank
from .segments import Generation, check_postings, open_generation

if TYPE_CHECKING:
    from .build import BuildReport

__all__ = ["Index"]


class Index:
    """One generation of an index, opened for searching."""

    def __init__(
        self, path: Path, manifest: Manifest, generation: Generation, db: sqlite3.Connection, embedder: Embedder
    ):
        self.path = path
        self.manifest = manifest
        self.generation = generation  # its FAISS segments, and its BM25 segments on first use
        self.db = db
        self.embedder = embedder
        self.folder = generation.folder
        self.build_report: BuildReport | None = None
        self._bm25_checked = False

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def build(cls, folder: str | Path, index_dir: str | Path | None = None, **options) -> Index:
        """Index (or update the index of) every supported file under `folder`; `options` are
        `BuildOptions` fields (embedder, chunk_tokens, overlap, index_type, rehash, rebuild, ...)."""
        from .build import BuildOptions, build_folder  # the writer side, loaded only to write

        index_dir = index_dir if index_dir is not None else default_index_dir()
        report = build_folder(Path(folder), Path(index_dir), BuildOptions(**options))
        return cls._loaded(index_dir, options.get("embedder"), report)

    @classmethod
    def build_from_documents(cls, documents: Iterable[Document], index_dir: str | Path, **options) -> Index:
        """Index in-memory documents (e.g. a benchmark's paragraphs), incrementally like a folder."""
        from .build import BuildOptions, build, document_sources

        documents = list(documents)
        report = build(lambda: document_sources(documents), Path(index_dir), "<documents>", BuildOptions(**options))
        return cls._loaded(index_dir, options.get("embedder"), report)

    @classmethod
    def _loaded(cls, index_dir, embedder, report: BuildReport) -> Index:
        index = cls.load(index_dir, embedder=embedder if is_embedder(embedder) else None)
        index.build_report = report
        return index

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def load(cls, index_dir: str | Path | None = None, embedder: str | Embedder | None = None) -> Index:
        """Open the newest generation of an index; refuses one built with another embedder, and
        names the damaged file when something does not check out."""
        given = index_dir if index_dir is not None else default_index_dir()
        path = store.resolve(given)
        _check_folder(path, given)
        db = store.connect(path)
        try:
            for attempt in range(3):  # a writer may retire the generation between reading its number and its files
                manifest = _current(db, path)
                try:
                    generation = open_generation(path, manifest)
                    break
                except FileNotFoundError as e:
                    again = _current(db, path)
                    if again.generation == manifest.generation or attempt == 2:
                        missing = Path(e.filename or "").relative_to(path) if e.filename else "files"
                        raise store.damaged(path, str(missing), "missing") from None
            emb = _embedder_for(manifest, embedder, given)
        except BaseException:
            db.close()
            raise
        return cls(path, manifest, generation, db, emb)

    # -- searching ------------------------------------------------------------------------------

    def check_embedder(self) -> None:
        if self.embedder.dimension != self.manifest.dimension:
            raise IndexError_(
                f"embedder {self.embedder.name!r} gives {self.embedder.dimension}-dimensional vectors, but index "
                f"{self.path} holds {self.manifest.dimension}-dimensional ones: rebuild the index with this embedder"
            )

    def search(self, query: str, k: int = 5, retriever: Retriever | str | None = None) -> list[Passage]:
        """The k best chunks for `query`, best first (hybrid by default; see `rag.retrieve`)."""
        return self.search_many([query], k, retriever=retriever)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 5, progress: bool = False, retriever: Retriever | str | None = None
    ) -> list[list[Passage]]:
        """Batched search: one encode call for all queries, one FAISS search, one BM25 pass."""
        if k < 1:
            raise RagError(f"k must be at least 1, got {k}")
        if any(not q.strip() for q in queries):
            raise RagError("the query is empty: give some text to search for")
        for q in queries:
            require_utf8(q, "query")
        retriever = as_retriever(retriever)
        hits = rank(self, list(queries), max(k, retriever.depth), retriever, progress)
        found = [self.passages([i for i, _ in row], [s for _, s in row]) for row in hits]
        if retriever.rerank is None:
            return found
        from rag.rerankers.apply import rerank

        return [rerank(q, passages, retriever.rerank)[:k] for q, passages in zip(queries, found)]

    # The primitives `rag.retrieve` combines.

    def embed_queries(self, queries: Sequence[str], progress: bool = False):
        self.check_embedder()
        return self.embedder.encode(list(queries), show_progress=progress)

    def dense_hits(self, vectors, k: int) -> list[Hits]:
        """Per query vector, the k nearest chunks by cosine similarity."""
        return self.generation.dense(vectors, k)

    @property
    def has_bm25(self) -> bool:
        return bool(self.manifest.bm25)

    def lexical_hits(self, queries: Sequence[str], k: int) -> list[Hits]:
        """Per query, the k best chunks by BM25."""
        if not lexical.compatible(self.manifest.bm25):
            raise IndexError_(
                f"index {self.path} has a BM25 index built with other settings ({self.manifest.bm25.get('tokenizer')}): "
                "run `rag index FOLDER` on it again to rebuild BM25 (nothing is re-embedded), or use --retriever dense"
            )
        self.check_bm25()
        terms = [lexical.tokenize(q) for q in queries]
        ids = self._term_ids({t for query in terms for t in query})
        try:
            return self.generation.lexical([[ids[t] for t in query if t in ids] for query in terms], k)
        except store.DamagedFile as e:
            raise store.damaged(self.path, e.name, e.why) from None

    def check_bm25(self) -> None:
        """Load this generation's BM25 segments (memory-mapped) and check their counts, once."""
        if self._bm25_checked:
            return
        try:
            check_postings(self.generation, self.path)
        except FileNotFoundError as e:
            raise self._gone_or_damaged(str(Path(e.filename or "bm25").relative_to(self.path))) from None
        self._bm25_checked = True

    def _term_ids(self, terms: set[str]) -> dict[str, int]:
        listed = sorted(terms)
        if not listed:
            return {}
        return dict(self._query(f"SELECT term, id FROM terms WHERE term IN ({','.join('?' * len(listed))})", listed))

    def chunk_vectors(self, ids: Sequence[int]):
        """The stored unit vectors of chunks, in the order of `ids`."""
        import numpy as np

        marks = ",".join("?" * len(ids))
        rows = dict(
            self._query(
                f"SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.sha256 = c.sha256 WHERE c.id IN ({marks})",
                [int(i) for i in ids],
            )
        )
        if len(rows) < len(set(int(i) for i in ids)):
            raise self._gone_or_damaged(store.META)
        if any(len(v) != 4 * self.manifest.dimension for v in rows.values()):  # a rebuild changed the embedder since
            raise self._gone_or_damaged(store.META, updated=True)
        return np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])

    def passages(self, ids: Sequence[int], scores: Sequence[float]) -> list[Passage]:
        """Passages for chunk ids (in the given order; -1 ids are ignored)."""
        wanted = [int(i) for i in ids if i >= 0]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = {
            row[0]: row
            for row in self._query(
                f'SELECT id, doc_path, text, start, "end", first_line, last_line FROM chunks WHERE id IN ({marks})',
                wanted,
            )
        }
        if len(rows) < len(set(wanted)):
            raise self._gone_or_damaged(store.META)
        out = []
        for i, score in zip(ids, scores):
            if int(i) >= 0:
                cid, path, text, start, end, first, last = rows[int(i)]
                out.append(Passage(cid, path, text, start, end, first, last, float(score), len(out) + 1))
        return out

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise store.damaged(self.path, store.META, e) from None

    def _gone_or_damaged(self, name: str, updated: bool = False) -> IndexError_:
        """Rows or files of this generation are missing: retired by a newer one, or damage."""
        try:
            newest = store.current_generation(self.db)
        except sqlite3.DatabaseError:
            newest = None
        if newest is not None and newest[0] > self.manifest.generation + (0 if updated else 1):
            return IndexError_(
                f"index {self.path} was updated by another process while this one was using it "
                f"(generation {self.manifest.generation} is gone, {newest[0]} is current): run the command again"
            )
        return store.damaged(self.path, name, "rows or files of the current generation are missing")

    # -- describing -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.generation)

    def live_ids(self) -> list[int]:
        g = self.manifest.generation
        return [
            row[0]
            for row in self._query(
                "SELECT id FROM chunks WHERE gen_added <= ? AND (gen_removed IS NULL OR gen_removed > ?) ORDER BY id",
                (g, g),
            )
        ]

    def documents(self) -> list[str]:
        g = self.manifest.generation
        return [
            row[0]
            for row in self._query(
                "SELECT DISTINCT doc_path FROM chunks WHERE gen_added <= ? AND (gen_removed IS NULL OR gen_removed > ?) "
                "ORDER BY doc_path",
                (g, g),
            )
        ]

    def size_on_disk(self) -> int:
        files = [self.path / store.META, *(p for p in self.folder.rglob("*") if p.is_file())]
        return sum(f.stat().st_size for f in files if f.exists())

    def verify(self) -> list[str]:
        """Everything `rag info --check` checks; each problem names its file. Empty when healthy."""
        import hashlib

        import numpy as np

        problems: list[str] = []
        g = self.manifest.generation
        try:
            result = self.db.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                problems.append(f"{store.META}: {'; '.join(r[0] for r in result[:3])}")
        except sqlite3.DatabaseError as e:
            return [f"{store.META}: {e}"]
        if not gen_marker_ok(self.folder, g):
            problems.append(
                f"{self.folder.name}/{store.GEN_MARKER}: missing or damaged (the generation's folder is not marked "
                "as rag's; `rag index FOLDER` writes it again)"
            )
        for name, info in sorted(self.manifest.files.items()):
            path = self.folder / name
            try:
                if store.file_sha256(path) != info.get("sha256"):
                    problems.append(f"{self.folder.name}/{name}: its checksum differs from the one recorded")
            except OSError as e:
                problems.append(f"{self.folder.name}/{name}: {e.strerror or e}")
        try:
            live = self.live_ids()
            bad_rows = 0
            for _cid, path, start, end, first, last, text, sha, digest in self.db.execute(
                'SELECT id, doc_path, start, "end", first_line, last_line, text, sha256, digest FROM chunks '
                "WHERE gen_added <= ? AND (gen_removed IS NULL OR gen_removed > ?)",
                (g, g),
            ):
                if (
                    hashlib.sha256(text.encode()).hexdigest() != sha
                    or store.chunk_digest(path, start, end, first, last, sha) != digest
                ):
                    bad_rows += 1
            bad_vectors = sum(
                1
                for vector, terms, digest in self.db.execute(
                    "SELECT vector, terms, digest FROM vectors WHERE sha256 IN (SELECT sha256 FROM chunks WHERE "
                    "gen_added <= ? AND (gen_removed IS NULL OR gen_removed > ?))",
                    (g, g),
                )
                if store.vector_digest(vector, terms) != digest
            )
        except sqlite3.DatabaseError as e:
            return problems + [f"{store.META}: {e}"]
        if bad_rows:
            problems.append(f"{store.META}: {bad_rows} chunk rows do not match their checksums")
        if bad_vectors:
            problems.append(f"{store.META}: {bad_vectors} stored vectors do not match their checksums")
        if len(live) != self.manifest.counts["chunks"]:
            problems.append(
                f"{store.META}: {len(live)} live chunks, the manifest says {self.manifest.counts['chunks']}"
            )
        faiss_ids = self.generation.faiss_ids()
        if faiss_ids is not None and sorted(faiss_ids.tolist()) != live:
            problems.append(f"{self.folder.name}: its FAISS ids are not the chunks in {store.META}")
        try:
            segments = self.generation.postings()
            problem = next((p.check() for p, _ in segments if p.check()), None)
            ids = np.concatenate(
                [np.asarray(p.chunk_ids) if live is None else np.asarray(p.chunk_ids)[live] for p, live in segments]
            )
            if problem is None and sorted(ids.tolist()) != live:
                problem = f"its chunk ids are not the chunks in {store.META}"
            if problem:
                problems.append(f"{self.folder.name}/bm25: {problem}")
        except (OSError, ValueError, store.DamagedFile) as e:
            problems.append(f"{self.folder.name}/bm25: {e}")
        return problems

    def close(self) -> None:
        self.db.close()


def _check_folder(path: Path, given) -> None:
    if not path.exists():
        raise IndexError_(f"no index at {given}: build one with `rag index FOLDER --index {given}`")
    if not path.is_dir():
        raise IndexError_(f"{given} is a file, not an index: give the index folder with --index")
    if store.is_ours(path):
        return
    if store.is_legacy(path):
        raise IndexError_(
            f"index {given} was made by an older rag (format 1): run `rag index FOLDER --index {given}` once to "
            "upgrade it (stored vectors are reused, nothing is embedded again)"
        )
    if store.looks_like_index(path):
        raise IndexError_(
            f"index {given} has lost its marker ({store.MARKER} is missing or damaged): run "
            f"`rag index FOLDER --index {given}` to write it again (nothing is embedded again)"
        )
    if (path / store.MARKER).exists():
        raise IndexError_(
            f"{given} is not a rag index ({store.MARKER} is damaged and the folder holds files rag did "
            "not make): give the index folder with --index, or build a new one in an empty folder"
        )
    raise IndexError_(
        f"{given} is not a rag index (it has no {store.MARKER}): build one with `rag index FOLDER --index {given}`"
        + (" in a new or empty folder" if any(path.iterdir()) else "")
    )


def _current(db: sqlite3.Connection, path: Path) -> Manifest:
    try:
        row = store.current_generation(db)
    except sqlite3.DatabaseError as e:
        raise store.damaged(path, store.META, e) from None
    if row is None:
        raise IndexError_(
            f"index {path} has no complete generation yet (its first build was interrupted): "
            f"run `rag index FOLDER --index {path}` again; it resumes where it stopped"
        )
    try:
        return Manifest.from_json(row[1])
    except ValueError as e:
        raise store.damaged(path, f"{store.META} (the manifest of generation {row[0]})", e) from None


def _embedder_for(manifest: Manifest, embedder: str | Embedder | None, given) -> Embedder:
    if embedder is None:
        return query_embedder(manifest.embedder, manifest.backend)
    emb = embedder if is_embedder(embedder) else query_embedder(canonical_name(embedder), manifest.backend)
    if emb.name != manifest.embedder:
        raise IndexError_(
            f"index {given} was built with embedder {manifest.embedder!r}, not {emb.name!r}: "
            "search it without --embedder, or rebuild it with the embedder you want"
        )
    return emb
