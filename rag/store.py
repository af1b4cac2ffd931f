"""The index folder on disk: SQLite metadata, FAISS index, JSON manifest, written atomically.

A save writes a complete new folder beside the old one and then swaps the two by
renames, so a run interrupted at any point leaves the previous index loadable: if
it dies between the two renames, the previous index is found at `<name>.old` and
`find_index` falls back to it. A lock file beside the folder keeps a second writer out.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import IndexError_, IndexLocked

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
META = "meta.sqlite"
FAISS_FILE = "index.faiss"

SCHEMA = """
CREATE TABLE documents (
    path TEXT PRIMARY KEY,   -- relative to the indexed folder, POSIX style
    sha256 TEXT NOT NULL,    -- content hash: decides what an update re-embeds
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,  -- the FAISS id
    doc_path TEXT NOT NULL REFERENCES documents(path),
    start INTEGER NOT NULL,  -- character span in the document's extracted text
    "end" INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    last_line INTEGER NOT NULL,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    vector BLOB NOT NULL     -- float32, unit length: lets any FAISS index type be rebuilt without re-embedding
);
CREATE INDEX chunks_doc ON chunks(doc_path);
"""


def old_path(index_dir: Path) -> Path:
    return index_dir.with_name(index_dir.name + ".old")


def lock_path(index_dir: Path) -> Path:
    return index_dir.with_name(index_dir.name + ".lock")


def temp_paths(index_dir: Path) -> list[Path]:
    return sorted(index_dir.parent.glob(index_dir.name + ".tmp-*"))


def find_index(index_dir: Path) -> Path | None:
    """The folder holding the current index: `index_dir`, or its `.old` twin after an interrupted swap."""
    for candidate in (index_dir, old_path(index_dir)):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexError_(f"cannot read {path} ({e}): rebuild the index with `rag index FOLDER`") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexError_(
            f"index {folder} has format version {version!r}, this rag reads version {FORMAT_VERSION}: "
            "rebuild it with `rag index FOLDER` into a new --index folder"
        )
    return manifest


@contextmanager
def write_lock(index_dir: Path):
    """Hold the index's lock file for the duration of a write; fail fast if another writer has it."""
    from filelock import FileLock, Timeout

    index_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(index_dir)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLocked(
            f"index {index_dir} is being written by another process (lock {lock_path(index_dir)}): "
            "wait for that `rag index` to finish"
        ) from None
    try:
        for stale in temp_paths(index_dir):  # left by a killed writer; we hold the lock, so no one else owns them
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        lock.release()


@contextmanager
def staged_folder(index_dir: Path):
    """A fresh temporary folder that replaces `index_dir` only if the block completes."""
    tmp = index_dir.with_name(f"{index_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _fsync_folder(tmp)
        old = old_path(index_dir)
        if index_dir.exists():
            if old.exists():
                shutil.rmtree(old)
            os.rename(index_dir, old)
        os.rename(tmp, index_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def create_meta(folder: Path) -> sqlite3.Connection:
    db = sqlite3.connect(folder / META)
    db.executescript(SCHEMA)
    return db


def open_meta(folder: Path) -> sqlite3.Connection:
    path = folder / META
    if not path.is_file():
        raise IndexError_(f"index {folder} has no {META}: rebuild it with `rag index FOLDER`")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def all_chunks(db: sqlite3.Connection, dimension: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(ids int64, vectors float32 (n, dimension), texts) of every chunk, in id order, in one pass:
    the vectors feed FAISS and the texts BM25."""
    rows = db.execute("SELECT id, vector, text FROM chunks ORDER BY id").fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
    return ids, vectors, [r[2] for r in rows]
