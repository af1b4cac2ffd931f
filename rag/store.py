"""The index folder on disk: proof that rag made it, one writer at a time, and the SQLite store.

An index folder (format 2) holds:

    rag-index.json   the marker: written first, so rag only ever changes or deletes inside
                     folders it made (a user's folder given as --index is refused, untouched)
    meta.sqlite      documents, chunks, their vectors and BM25 terms, and the generations;
                     updated in place, one transaction per update: that commit is the switch
    gen-000007/      the FAISS and BM25 files of generation 7 (see `rag.segments`; each gen
                     folder has a marker too), written and fsynced before the commit that
                     makes 7 current
    write.lock       held by the one process writing

Readers take the newest committed generation from meta.sqlite and read that generation's
files; chunk rows are never changed, only added and (two generations later) deleted, and their
ids are never reused, so a reader's ids always mean what they meant when it loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from .durable import file_sha256, fsync_dir, fsync_tree, is_disk_full  # noqa: F401 - re-exported
from .errors import IndexError_, IndexLocked, IndexPermission, RagError

FORMAT = "rag-index"
FORMAT_VERSION = 2
MARKER = "rag-index.json"
GEN_MARKER = "rag-generation.json"
META = "meta.sqlite"
LOCK = "write.lock"
GEN_PREFIX = "gen-"
LEGACY_MANIFEST = "manifest.json"  # format 1 kept its manifest here; see `is_legacy`
LEGACY_FILES = ("manifest.json", "meta.sqlite", "index.faiss", "bm25")

SCHEMA = """
CREATE TABLE documents (
    path TEXT PRIMARY KEY,    -- relative to the indexed folder, POSIX style
    sha256 TEXT NOT NULL,     -- content hash: decides what an update re-reads
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    seen_ns INTEGER NOT NULL, -- when it was hashed; a file modified just before that is hashed again
    chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the FAISS and BM25 id; never reused
    doc_path TEXT NOT NULL,
    start INTEGER NOT NULL,   -- character span in the document's extracted text
    "end" INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    last_line INTEGER NOT NULL,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,     -- of the text: the key of its vector
    digest TEXT NOT NULL,     -- of the whole row: `rag info --check` finds flipped bytes
    gen_added INTEGER,        -- NULL while the update that adds it is being written
    gen_removed INTEGER       -- NULL while live
);
CREATE INDEX chunks_doc ON chunks(doc_path, gen_removed);
CREATE INDEX chunks_sha ON chunks(sha256);
CREATE INDEX chunks_added ON chunks(gen_added);
CREATE INDEX chunks_removed ON chunks(gen_removed) WHERE gen_removed IS NOT NULL;  -- partial: never chosen for "IS NULL"
CREATE TABLE vectors (
    sha256 TEXT PRIMARY KEY,  -- one embedding per distinct chunk text: a moved file re-embeds nothing
    vector BLOB NOT NULL,     -- float32, unit length
    terms BLOB NOT NULL,      -- its BM25 term ids (int32, in order): never tokenised twice
    digest TEXT NOT NULL
);
CREATE TABLE terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);  -- append-only BM25 vocabulary
CREATE TABLE generations (gen INTEGER PRIMARY KEY, manifest TEXT NOT NULL);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# While `rag index --rebuild` changes the embedder, the new embedder's vectors, swapped in at its commit.
NEXT_VECTORS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS next_vectors (sha256 TEXT PRIMARY KEY, vector BLOB NOT NULL, "
    "terms BLOB NOT NULL, digest TEXT NOT NULL)"
)


# -- the folder ---------------------------------------------------------------------------------


def resolve(index_dir: str | Path) -> Path:
    """The one spelling of an index path: a symlink and its target are the same index, one lock."""
    if str(index_dir).strip() == "":
        raise RagError("the --index path is empty: give a folder for the index")
    return Path(index_dir).expanduser().resolve()


def is_ours(folder: Path) -> bool:
    """Whether `folder` carries rag's index marker."""
    return _read_marker(folder / MARKER, FORMAT) is not None


def is_legacy(folder: Path) -> bool:
    """A format-1 index (before markers): its manifest.json names the format and its files are rag's only."""
    try:
        manifest = json.loads((folder / LEGACY_MANIFEST).read_text(encoding="utf-8"))
        names = {p.name for p in folder.iterdir()}
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format_version") == 1
        and "embedder" in manifest
        and names <= set(LEGACY_FILES)
        and (folder / META).is_file()
    )


def claim(index_dir: Path) -> bool:
    """Make `index_dir` a marked index folder, or prove it is one. Refuses, touching nothing, a
    file or a folder that holds anything not made by rag. True when it is a format-1 index."""
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexError_(
            f"--index {index_dir} is a file, not an index folder: choose a new or empty folder (nothing was changed)"
        )
    if index_dir.is_dir():
        if is_ours(index_dir):
            return False
        if looks_like_index(index_dir):  # its marker was lost or damaged; everything else in it is rag's
            _restore_marker(index_dir / MARKER, FORMAT)
            return False
        if (index_dir / MARKER).exists():
            raise IndexError_(
                f"{index_dir / MARKER} is damaged and the folder holds files rag did not make, so {index_dir} cannot be "
                "proven to be a rag index: choose another --index (nothing was changed)"
            )
        if is_legacy(index_dir):
            _write_marker(index_dir / MARKER, FORMAT)
            return True
        entries = sorted(p.name for p in index_dir.iterdir())
        if entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise IndexError_(
                f"--index {index_dir} is a folder of {len(entries)} entries ({shown}) that is not a rag index: "
                "choose a new or empty folder for the index (nothing was changed)"
            )
    else:
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise IndexError_(f"cannot create the index folder {index_dir}: {e.strerror or e}") from None
    _write_marker(index_dir / MARKER, FORMAT)
    fsync_dir(index_dir)
    fsync_dir(index_dir.parent)
    return False


def _write_marker(path: Path, fmt: str, **extra) -> None:
    data = (json.dumps({"format": fmt, "format_version": FORMAT_VERSION, **extra}) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if _read_marker(path, fmt) is None:
            raise IndexError_(
                f"{path} exists and is not rag's marker: choose another --index (nothing was changed)"
            ) from None
        return
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def looks_like_index(folder: Path) -> bool:
    """A format-2 index whose marker is missing or damaged: every entry is one rag makes (its
    meta.sqlite holding rag's tables, generation folders carrying their own markers, the lock)
    and meta.sqlite is there. Only then may the marker be written again."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    names = {p.name for p in entries}
    if META not in names:
        return False
    for entry in entries:
        if entry.name in (MARKER, MARKER + ".tmp", META, META + "-journal", LOCK):
            continue
        if (
            entry.name.startswith(GEN_PREFIX)
            and entry.is_dir()
            and not entry.is_symlink()
            and _read_marker(entry / GEN_MARKER, FORMAT + "-generation") is not None
        ):
            continue
        return False
    try:
        db = sqlite3.connect(f"{(folder / META).as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return {"documents", "chunks", "vectors", "terms", "generations", "state"} <= tables


def _restore_marker(path: Path, fmt: str) -> None:
    """Write the marker again (atomically) in a folder `looks_like_index` proved to be rag's."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"format": fmt, "format_version": FORMAT_VERSION}) + "\n", encoding="utf-8")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _read_marker(path: Path, fmt: str) -> dict | None:
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == fmt else None


@contextmanager
def write_lock(index_dir: Path):
    """Hold the index's lock for a write; a second writer fails at once. The lock file lives
    inside the (marked) index folder, so it can never be a user's file."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(index_dir / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLocked(
            f"index {index_dir} is being written by another process (lock {index_dir / LOCK}): "
            "wait for that `rag index` to finish"
        ) from None
    except OSError as e:
        raise IndexError_(
            f"cannot write in the index folder {index_dir} ({_reason(e)}): run as a user who may "
            "write there, or choose another --index (nothing was changed)"
        ) from None
    try:
        yield
    finally:
        lock.release()


# -- generations --------------------------------------------------------------------------------


def gen_dir(index_dir: Path, gen: int) -> Path:
    return index_dir / f"{GEN_PREFIX}{gen:06d}"


def new_gen_dir(index_dir: Path, gen: int) -> Path:
    """An empty, marked folder for generation `gen` (a leftover of a killed run is replaced)."""
    folder = gen_dir(index_dir, gen)
    if folder.exists():
        remove_gen_dir(folder)
    folder.mkdir()
    _write_marker(folder / GEN_MARKER, FORMAT + "-generation", generation=gen)
    return folder


def gen_dirs(index_dir: Path) -> dict[int, Path]:
    """Generation folders that carry rag's marker, by number."""
    found = {}
    for path in index_dir.glob(GEN_PREFIX + "*"):
        number = path.name[len(GEN_PREFIX) :]
        if number.isdigit() and path.is_dir() and not path.is_symlink():
            found[int(number)] = path
    return found


def remove_gen_dir(folder: Path) -> None:
    """Delete a generation folder, only if it carries rag's generation marker."""
    if _read_marker(folder / GEN_MARKER, FORMAT + "-generation") is None:
        return
    shutil.rmtree(folder, ignore_errors=True)


# -- SQLite -------------------------------------------------------------------------------------


def connect(index_dir: Path, *, create: bool = False, writer: bool = False) -> sqlite3.Connection:
    """meta.sqlite of an index. Readers open it read-write when they may (so a journal left by a
    killed writer is rolled back rather than refused) but with `query_only` set."""
    path = index_dir / META
    if not create and not path.is_file():
        raise IndexError_(
            f"index {index_dir} is damaged: {META} is missing; run `rag index FOLDER --index {index_dir}` again"
        )
    if not create:
        check_access(path, write=writer)
    mode = "rwc" if create else ("rw" if writer or os.access(path, os.W_OK) else "ro")
    try:
        db = sqlite3.connect(
            f"{path.as_uri()}?mode={mode}", uri=True, check_same_thread=False, isolation_level=None, timeout=30
        )
        db.execute("PRAGMA busy_timeout = 30000")
        if create:
            db.executescript(SCHEMA)
        if writer or create:
            db.execute("PRAGMA synchronous = FULL")
        else:
            db.execute("PRAGMA query_only = 1")
        db.execute("SELECT gen FROM generations LIMIT 1").fetchall()  # fails at once on a damaged file
    except sqlite3.DatabaseError as e:
        raise damaged(index_dir, META, e) from None
    return db


def check_access(path: Path, write: bool = False) -> None:
    """A file of the index this user may not read (or, for a writer, write) is a permission
    problem, not damage: say so, naming the file."""
    wanted = os.R_OK | (os.W_OK if write else 0)
    if os.access(path, wanted):
        return
    verb = "read and write" if write else "read"
    raise IndexPermission(
        f"permission denied: this user may not {verb} {path}: run as the user who built the index "
        f"or ask them to grant access (e.g. chmod u+rw {path.name}); the index itself is not damaged"
    )


def _reason(error: OSError) -> str:
    return "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))


class DamagedFile(Exception):
    """A file of a generation that cannot be read as what it should be: `name` is its path inside
    the generation folder, `why` what is wrong."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


def damaged(index_dir: Path, name: str, error: BaseException | str) -> IndexError_:
    """The one-line error for a damaged part of an index."""
    why = error if isinstance(error, str) else (getattr(error, "strerror", None) or str(error) or type(error).__name__)
    return IndexError_(
        f"index {index_dir} is damaged: {name}: {why}; run `rag index FOLDER --index {index_dir}` again to repair it"
    )


@contextmanager
def transaction(db: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk): no second ROLLBACK
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def current_generation(db: sqlite3.Connection) -> tuple[int, str] | None:
    """(number, manifest JSON) of the newest committed generation, or None before the first."""
    return db.execute("SELECT gen, manifest FROM generations ORDER BY gen DESC LIMIT 1").fetchone()


def id_sum(ids) -> int:
    """The sum of chunk ids mod 2**63: a cheap check that FAISS or BM25 rows are this index's chunks."""
    import numpy as np

    ids = np.asarray(ids)
    return int(ids.astype(np.uint64).sum() % (1 << 63)) if len(ids) else 0


def seed_chunk_ids(db: sqlite3.Connection) -> None:
    """Start chunk ids at a random offset, so the ids in a FAISS file copied from another index
    match no chunk here (a load then fails its id check instead of returning wrong passages)."""
    import secrets

    db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('chunks', ?)", (secrets.randbelow(1 << 40) * 1024,))


class _HashingFile:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)


def write_file(path: Path, save) -> dict:
    """Create `path` with `save(file)`, fsync it, and return its size and sha256 (hashed as it is
    written, so a large FAISS file is not read back)."""
    with open(path, "xb") as raw:
        out = _HashingFile(raw)
        save(out)
        raw.flush()
        os.fsync(raw.fileno())
    return {"size": out.size, "sha256": out.digest.hexdigest()}


def is_corrupt(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is damaged (not busy, not full)."""
    text = str(error).lower()
    return type(error) is sqlite3.DatabaseError or any(
        word in text for word in ("malformed", "not a database", "no such table", "no such column", "corrupt")
    )


def vector_blob(vector) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype=np.float32).tobytes()


def text_sha(text: str) -> str:
    """A chunk's text, hashed: vectors are stored once per distinct text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_digest(doc_path: str, start: int, end: int, first_line: int, last_line: int, sha256: str) -> str:
    """What a chunk row says, hashed: `rag info --check` recomputes it to find flipped bytes."""
    return hashlib.sha256(f"{doc_path}\0{start}\0{end}\0{first_line}\0{last_line}\0{sha256}".encode()).hexdigest()[:16]


def vector_digest(vector: bytes, terms: bytes) -> str:
    return hashlib.sha256(vector + b"\0" + terms).hexdigest()[:16]
