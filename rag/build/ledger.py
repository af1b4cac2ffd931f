"""The one writer's record: every SQL statement a build runs against meta.sqlite, on one
connection held under the index's write lock. Stages hand it plain data; only it writes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import lexical, store
from ..errors import IndexError_, IndexPermission
from ..manifest import Manifest
from ..stored import StoredChunks

LEGACY_DB = "legacy-v1.sqlite"  # a format-1 index's meta.sqlite while it is being upgraded
PLAN_COMMIT = 2000  # pending chunk rows per transaction while planning
INSERT_BATCH = 500  # chunk rows per executemany


class Ledger:
    """meta.sqlite of one index, opened (and recovered) for one build."""

    def __init__(self, path: Path, warn: Callable[[str], None]) -> None:
        self.path, self.warn = path, warn
        self.db: sqlite3.Connection | None = None
        self.prev: Manifest | None = None  # the current generation's manifest
        self.fresh = False  # meta.sqlite was created by this run
        self.sweep_vectors = False  # a killed run asked for unused vectors to be dropped
        self.vectors = "vectors"  # the table new vectors go into: next_vectors while a rebuild changes the embedder
        self.new_gen_dir: Path | None = None  # the generation being written, until its commit
        self.notes: list[str] = []
        self.pending = 0  # pending chunk rows inserted by this run
        self._since_commit = 0

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def disk_full(self) -> IndexError_:
        """The error for a full disk, after removing the generation being written."""
        if self.new_gen_dir is not None:
            store.remove_gen_dir(self.new_gen_dir)
        where = f"generation {self.prev.generation}" if self.prev else "no generation yet"
        return IndexError_(
            f"no space left on the device of {self.path} while updating the index: free some space and run "
            f"`rag index` again (the index is unchanged: {where})"
        )

    # -- opening and recovering ---------------------------------------------------------------

    def open(self, source: str, wipe: bool = False) -> None:
        """Open meta.sqlite (creating it, or starting again when it is damaged), drop what a killed
        run left pending, and take over a format-1 index's vectors."""
        path = self.path
        if wipe:
            self._wipe()
        if (
            (path / store.LEGACY_MANIFEST).is_file()
            and (path / store.META).is_file()
            and not (path / LEGACY_DB).exists()
        ):
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
                self.warn(f"{path / store.META} is damaged ({e}): rebuilding the index from {source}")
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
                self.db.execute(
                    "INSERT OR REPLACE INTO state(key, value) VALUES ('legacy_manifest', ?)", (json.dumps(legacy),)
                )
        if legacy_db.exists():
            try:
                old = sqlite3.connect(f"{legacy_db.as_uri()}?mode=ro", uri=True)
                rows = old.execute("SELECT sha256, vector, text FROM chunks").fetchall()
                old.close()
            except sqlite3.DatabaseError:
                rows = []
            terms = self.term_blobs([lexical.tokenize(text) for _, _, text in rows])
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
        self.notes.append("upgraded from index format 1 (stored vectors reused)")

    def recorded(self) -> dict:
        """The settings the index was built with: its manifest's, or a format-1 index's."""
        if self.prev is not None:
            m = self.prev
            return {
                "embedder": m.embedder,
                "chunk_tokens": m.chunking["tokens"],
                "overlap": m.chunking["overlap"],
                "index_type": m.index_type,
                "source": m.source,
                "documents": m.counts["documents"],
                "backend": m.backend,
            }
        row = self.db.execute("SELECT value FROM state WHERE key = 'legacy_manifest'").fetchone()
        if row is None:
            return {}
        legacy = json.loads(row[0]) or {}
        chunking = legacy.get("chunking") or {}
        return {
            "embedder": legacy.get("embedder"),
            "chunk_tokens": chunking.get("tokens"),
            "overlap": chunking.get("overlap"),
            "index_type": legacy.get("index_type"),
            "source": legacy.get("source"),
            "documents": (legacy.get("counts") or {}).get("documents", 0),
        }

    def choose_vector_table(
        self, name: str, recorded: str | None, rebuild: bool, notify: Callable[[str], None]
    ) -> None:
        """Where new vectors go. `vectors` holds the current generation's embedder's; a rebuild
        with another embedder fills `next_vectors`, kept across a killed run (for that embedder
        only) and swapped in by the commit. Vectors that no generation records (a first build
        killed, then run with another embedder) are dropped."""
        db = self.db
        state = dict(db.execute("SELECT key, value FROM state WHERE key IN ('embedder', 'next_embedder')").fetchall())
        if self.prev is None and state.get("embedder", name) != name:
            with store.transaction(db):
                db.execute("DELETE FROM vectors")
        if rebuild and recorded and name != recorded:
            db.execute(store.NEXT_VECTORS_SCHEMA)
            with store.transaction(db):
                if state.get("next_embedder") != name:
                    db.execute("DELETE FROM next_vectors")
                db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('next_embedder', ?)", (name,))
            self.vectors = "next_vectors"
            notify(
                f"--embedder {name} differs from the index's {recorded}: every chunk is embedded again; "
                f"searches keep using {recorded} until the rebuild commits"
            )
        elif state.get("next_embedder") and not rebuild:
            held = db.execute("SELECT COUNT(*) FROM next_vectors").fetchone()[0]
            notify(
                f"an interrupted `rag index --rebuild --embedder {state['next_embedder']}` left {held} "
                "vectors: run it again to resume it"
            )
        with store.transaction(db):
            db.execute(
                "INSERT OR REPLACE INTO state(key, value) VALUES ('embedder', ?)",
                (recorded if self.vectors == "next_vectors" else name,),
            )

    # -- 1. plan --------------------------------------------------------------------------------

    def documents(self) -> dict[str, tuple]:
        """path -> (sha256, size, mtime_ns, seen_ns) of every indexed document."""
        return {
            row[0]: row[1:] for row in self.db.execute("SELECT path, sha256, size, mtime_ns, seen_ns FROM documents")
        }

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit_plan(self) -> None:
        self.db.execute("COMMIT")

    def insert_chunks(self, chunks: Iterable) -> int:
        """Insert chunks as pending rows, committing every PLAN_COMMIT; how many there were."""
        db, count, batch = self.db, 0, []

        def flush() -> None:
            db.executemany(
                'INSERT INTO chunks(doc_path, start, "end", first_line, last_line, text, sha256, digest) '
                "VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        c.doc_path,
                        c.start,
                        c.end,
                        c.first_line,
                        c.last_line,
                        c.text,
                        sha,
                        store.chunk_digest(c.doc_path, c.start, c.end, c.first_line, c.last_line, sha),
                    )
                    for c in batch
                    for sha in [store.text_sha(c.text)]
                ],
            )
            self.pending += len(batch)
            self._since_commit += len(batch)
            batch.clear()
            if self._since_commit >= PLAN_COMMIT:
                db.execute("COMMIT")
                db.execute("BEGIN IMMEDIATE")
                self._since_commit = 0

        for chunk in chunks:
            batch.append(chunk)
            count += 1
            if len(batch) >= INSERT_BATCH:
                flush()
        if batch:
            flush()
        return count

    def drop_pending(self, path: str) -> None:
        """Forget the pending rows of a file that failed part-way."""
        self.db.execute("DELETE FROM chunks WHERE gen_added IS NULL AND doc_path = ?", (path,))

    # -- 2. embed -------------------------------------------------------------------------------

    def unembedded(self) -> list[str]:
        """Texts (by sha256) of pending chunks with no vector in this run's table, shortest first."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT c.sha256 FROM chunks c WHERE c.gen_added IS NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {self.vectors} v WHERE v.sha256 = c.sha256) "
                "GROUP BY c.sha256 ORDER BY MIN(length(c.text)), c.sha256"
            )
        ]

    def damaged_vectors(self, dimension: int) -> list[str]:
        """Stored vectors of pending chunks that fail their checksum or have another length."""
        size = 4 * dimension
        return [
            sha
            for sha, vector, terms, digest in self.db.execute(
                f"SELECT v.sha256, v.vector, v.terms, v.digest FROM {self.vectors} v "
                "WHERE v.sha256 IN (SELECT sha256 FROM chunks WHERE gen_added IS NULL)"
            )
            if len(vector) != size or store.vector_digest(vector, terms) != digest
        ]

    def texts(self, shas: list[str]) -> list[str]:
        return [
            self.db.execute("SELECT text FROM chunks WHERE sha256 = ? LIMIT 1", (sha,)).fetchone()[0] for sha in shas
        ]

    def store_vectors(self, shas: list[str], blobs: list[bytes], token_lists: list[list[str]]) -> None:
        """Commit vectors with their BM25 term ids (a checkpoint a killed build resumes from)."""
        terms = self.term_blobs(token_lists)
        rows = [(sha, blob, term, store.vector_digest(blob, term)) for sha, blob, term in zip(shas, blobs, terms)]
        with store.transaction(self.db):
            self.db.executemany(
                f"INSERT OR REPLACE INTO {self.vectors}(sha256, vector, terms, digest) VALUES (?,?,?,?)", rows
            )
            self.db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('building', ?)", (now(),))

    def term_blobs(self, token_lists: list[list[str]]) -> list[bytes]:
        """Each token list as int32 term ids; new terms join the (append-only) vocabulary."""
        db = self.db
        listed = sorted({w for tokens in token_lists for w in tokens})
        known: dict[str, int] = {}

        def look_up(words: list[str]) -> None:
            for start in range(0, len(words), 500):
                part = words[start : start + 500]
                known.update(
                    db.execute(f"SELECT term, id FROM terms WHERE term IN ({','.join('?' * len(part))})", part)
                )

        look_up(listed)
        fresh = [w for w in listed if w not in known]
        if fresh:
            with store.transaction(db):
                db.executemany("INSERT INTO terms(term) VALUES (?)", [(w,) for w in fresh])
            look_up(fresh)
        return [np.array([known[w] for w in tokens], dtype=np.int32).tobytes() for tokens in token_lists]

    # -- 3. write -------------------------------------------------------------------------------

    def dimension(self, embedder: str, fallback: int) -> int:
        """The vectors' dimension: the index's, else a stored vector's, else the embedder's."""
        if self.prev is not None and self.prev.embedder == embedder:
            return self.prev.dimension
        row = self.db.execute(f"SELECT vector FROM {self.vectors} LIMIT 1").fetchone()
        return len(row[0]) // 4 if row else fallback

    def live_ids_of(self, paths: list[str]) -> np.ndarray:
        ids: list[int] = []
        for path in paths:
            ids += [
                row[0]
                for row in self.db.execute(
                    "SELECT id FROM chunks WHERE doc_path = ? AND gen_removed IS NULL AND gen_added IS NOT NULL",
                    (path,),
                )
            ]
        return np.array(sorted(ids), dtype=np.int64)

    def pending_ids(self) -> np.ndarray:
        return np.array(
            [row[0] for row in self.db.execute("SELECT id FROM chunks WHERE gen_added IS NULL")], dtype=np.int64
        )

    def vocabulary_size(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM terms").fetchone()[0]

    def stored(self, dimension: int) -> StoredChunks:
        return StoredChunks(self.db, dimension, self.vectors)

    def commit(
        self,
        gen: int,
        removed: np.ndarray,
        manifest: Manifest,
        replaced: list[str],
        doc_rows: list[tuple],
        touched: list[tuple],
    ) -> None:
        """The switch: one transaction makes generation `gen` current."""
        db = self.db
        with store.transaction(db):
            db.executemany("UPDATE chunks SET gen_removed = ? WHERE id = ?", [(gen, int(i)) for i in removed])
            db.execute("UPDATE chunks SET gen_added = ? WHERE gen_added IS NULL", (gen,))
            db.executemany("DELETE FROM documents WHERE path = ?", [(p,) for p in replaced])
            db.executemany(
                "INSERT OR REPLACE INTO documents(path, sha256, size, mtime_ns, seen_ns, chunks) VALUES (?,?,?,?,?,?)",
                doc_rows,
            )
            db.executemany("UPDATE documents SET mtime_ns = ?, size = ?, seen_ns = ? WHERE path = ?", touched)
            db.execute("INSERT INTO generations(gen, manifest) VALUES (?, ?)", (gen, manifest.to_json()))
            db.execute("DELETE FROM state WHERE key IN ('building', 'legacy_manifest')")
            if self.vectors == "next_vectors":  # the new embedder's vectors become the index's
                db.execute("DROP TABLE vectors")
                db.execute("ALTER TABLE next_vectors RENAME TO vectors")
                db.execute("DELETE FROM state WHERE key = 'next_embedder'")
                db.execute("INSERT OR REPLACE INTO state(key, value) VALUES ('embedder', ?)", (manifest.embedder,))
        self.new_gen_dir = None
        self.prev = manifest
        self.vectors = "vectors"

    def finish(self, gen: int, touched: list[tuple] = ()) -> None:
        """After the commit: record re-hashed files, drop what no reader of `gen` or `gen - 1` needs."""
        db = self.db
        try:
            with store.transaction(db):
                db.executemany("UPDATE documents SET mtime_ns = ?, size = ?, seen_ns = ? WHERE path = ?", touched)
                db.execute("DELETE FROM state WHERE key = 'building'")
                stale = [
                    row[0]
                    for row in db.execute(
                        "SELECT DISTINCT sha256 FROM chunks WHERE gen_removed IS NOT NULL AND gen_removed < ?", (gen,)
                    )
                ]
                db.execute("DELETE FROM chunks WHERE gen_removed IS NOT NULL AND gen_removed < ?", (gen,))
                db.execute("DELETE FROM generations WHERE gen < ?", (gen - 1,))
                if self.sweep_vectors:
                    db.execute("DELETE FROM vectors WHERE sha256 NOT IN (SELECT sha256 FROM chunks)")
                else:
                    db.executemany(
                        "DELETE FROM vectors WHERE sha256 = ? AND NOT EXISTS "
                        "(SELECT 1 FROM chunks WHERE chunks.sha256 = vectors.sha256)",
                        [(s,) for s in stale],
                    )
            for number, folder in store.gen_dirs(self.path).items():
                if number < gen - 1 or number > gen:
                    store.remove_gen_dir(folder)
            legacy = self.path / LEGACY_DB
            if legacy.exists():
                legacy.unlink()
            store.fsync_dir(self.path)
        except (OSError, sqlite3.Error) as e:  # the new generation is committed; cleaning up can wait
            self.warn(f"could not clean up old generations in {self.path} ({e}): the next `rag index` will")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
