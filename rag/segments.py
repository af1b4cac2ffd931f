"""A generation's search files: a base segment, a small delta segment, and the base ids deleted since.

    gen-000007/
      base/index.faiss   base/bm25/*.npy    the chunks as of the last merge: hard links to the
                                            previous generation's files while the base is unchanged
      delta/index.faiss  delta/bm25/*.npy   chunks added since the last merge (FAISS flat: exact)
      deleted.npy                           ids of base chunks retired since the last merge

So an update writes only the delta and the deleted list, whose size grows with what changed
since the last merge, not with the index. When they outgrow MERGE_FRACTION of the base, the
update merges them into a new base (Lucene's segments, with two of them). A search asks both
segments, the base through a selector that skips deleted ids, and BM25 takes its statistics
(N, document frequencies, average length) over the live chunks of both.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import faiss_index, lexical, store
from .manifest import Manifest

MERGE_FRACTION = 0.1
BASE, DELTA, DELETED = "base", "delta", "deleted.npy"


@dataclass
class Segment:
    """What goes into one segment: chunk ids, their vectors and their BM25 term ids."""

    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dimension)
    terms: list[np.ndarray]  # per chunk, its term ids with repeats


def write_segment(folder: Path, name: str, index, postings: lexical.Postings) -> dict[str, dict]:
    """Write a segment's FAISS index and postings under `folder/name/`; their sizes and hashes."""
    target = folder / name
    target.mkdir()
    files = {f"{name}/{faiss_index.FILE}": faiss_index.write(index, target / faiss_index.FILE, store.write_file)}
    files.update({f"{name}/{rel}": info for rel, info in postings.save(target, store.write_file).items()})
    return files


def write_deleted(folder: Path, ids: np.ndarray) -> dict[str, dict]:
    array = np.ascontiguousarray(np.sort(np.asarray(ids, dtype=np.int64)))
    return {DELETED: store.write_file(folder / DELETED, lambda f: np.save(f, array, allow_pickle=False))}


def link_base(previous: Path, folder: Path, files: dict[str, dict]) -> dict[str, dict]:
    """The previous generation's base, hard-linked (copied where links are not possible): an
    unchanged base costs nothing to carry into the next generation."""
    linked = {}
    for rel, info in files.items():
        if not rel.startswith(BASE + "/"):
            continue
        source, target = previous / rel, folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        linked[rel] = info
    return linked


def should_merge(base: int, deleted: int, delta: int) -> bool:
    """Whether the delta and the deletions have outgrown the base enough to merge them into it."""
    return delta + deleted > MERGE_FRACTION * max(base - deleted, 0)


def read_deleted(folder: Path, manifest: Manifest) -> np.ndarray:
    """The deleted ids of a generation, checked against the recorded checksum (a small file)."""
    path = folder / DELETED
    if store.file_sha256(path) != manifest.files.get(DELETED, {}).get("sha256"):
        raise ValueError(f"{DELETED} differs from its checksum")
    return np.load(path, allow_pickle=False)


class Generation:
    """One generation opened for searching: both FAISS segments, the deleted ids, and (on
    first use) both BM25 segments."""

    def __init__(self, folder: Path, manifest: Manifest, base, delta, deleted: np.ndarray) -> None:
        self.folder, self.manifest = folder, manifest
        self.base, self.delta, self.deleted = base, delta, deleted
        self._search_params = faiss_index.search_params(manifest.index_type, manifest.index_params, deleted)
        self._postings: tuple[lexical.Postings, lexical.Postings, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.base.ntotal) - len(self.deleted) + int(self.delta.ntotal)

    def dense(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, the k nearest live chunks of both segments, by inner product."""
        parts = []
        for index, params in ((self.base, self._search_params), (self.delta, None)):
            n = int(index.ntotal)
            if n:
                scores, ids = faiss_index.search(index, vectors, min(k, n), params)
                parts.append((scores, ids))
        out = []
        for q in range(len(vectors)):
            hits = [(int(i), float(s)) for scores, ids in parts for i, s in zip(ids[q], scores[q]) if i >= 0]
            hits.sort(key=lambda hit: (-hit[1], hit[0]))
            out.append(hits[:k])
        return out

    def faiss_ids(self) -> np.ndarray | None:
        """The live ids both FAISS segments hold (None where FAISS does not keep a list: ivfpq)."""
        base, delta = faiss_index.ids_of(self.base), faiss_index.ids_of(self.delta)
        if base is None or delta is None:
            return None
        return np.concatenate([base[~np.isin(base, self.deleted)], delta])

    def postings(self) -> tuple[lexical.Postings, lexical.Postings, np.ndarray]:
        """(base, delta, live mask over the base's rows): memory-mapped, loaded on first use."""
        if self._postings is None:
            base = lexical.Postings.load(self.folder / BASE)
            delta = lexical.Postings.load(self.folder / DELTA)
            self._postings = (base, delta, ~np.isin(np.asarray(base.chunk_ids), self.deleted))
        return self._postings

    def lexical(self, query_terms, k: int) -> list[list[tuple[int, float]]]:
        base, delta, live = self.postings()
        return lexical.search_segments([(base, live), (delta, None)], query_terms, k)


def open_generation(index_dir: Path, manifest: Manifest) -> Generation:
    """Read a generation's FAISS segments and deleted ids, checking sizes, counts and ids against
    the manifest. FileNotFoundError when its folder is gone (a writer retired it); IndexError_
    naming the file for anything damaged."""
    folder = store.gen_dir(index_dir, manifest.generation)
    counts = manifest.counts
    segments = []
    for name, expected in ((BASE, counts.get("base")), (DELTA, counts.get("delta"))):
        rel = f"{name}/{faiss_index.FILE}"
        where = f"{folder.name}/{rel}"
        path = folder / rel
        size, recorded = path.stat().st_size, manifest.files.get(rel, {}).get("size")
        if size != recorded:
            raise store.damaged(index_dir, where, f"it has {size} bytes, the manifest says {recorded}")
        try:
            index, _ = faiss_index.read(path)
        except RuntimeError:
            raise store.damaged(index_dir, where, "FAISS cannot read it") from None
        if index.ntotal != expected or index.d != manifest.dimension:
            raise store.damaged(index_dir, where, f"it holds {index.ntotal} vectors of {index.d} dimensions, the "
                                                  f"manifest says {expected} of {manifest.dimension}")
        segments.append(index)
    try:
        deleted = read_deleted(folder, manifest)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise store.damaged(index_dir, f"{folder.name}/{DELETED}", e) from None
    faiss_index.configure(segments[0], manifest.index_type, manifest.index_params)
    generation = Generation(folder, manifest, segments[0], segments[1], deleted)
    ids = generation.faiss_ids()
    if len(deleted) != counts.get("deleted") or (ids is not None and store.id_sum(ids) != manifest.id_sum):
        raise store.damaged(index_dir, f"{folder.name}/{BASE}/{faiss_index.FILE}",
                            "its ids are not this index's chunks (copied from another index?)")
    return generation


def check_postings(generation: Generation, index_dir: Path) -> None:
    """The cheap checks of both BM25 segments against the manifest; IndexError_ naming the file."""
    try:
        base, delta, live = generation.postings()
    except store.DamagedFile as e:
        raise store.damaged(index_dir, f"{generation.folder.name}/{e.name}", e.why) from None
    counts, folder = generation.manifest.counts, generation.folder
    for name, postings, expected in ((BASE, base, counts.get("base")), (DELTA, delta, counts.get("delta"))):
        problem = postings.check()
        if problem is None and len(postings) != expected:
            problem = f"it has {len(postings)} rows, the manifest says {expected}"
        if problem:
            raise store.damaged(index_dir, f"{folder.name}/{name}/{lexical.FOLDER}", problem)
    ids = np.concatenate([np.asarray(base.chunk_ids)[live], np.asarray(delta.chunk_ids)])
    if generation.manifest.id_sum is not None and store.id_sum(ids) != generation.manifest.id_sum:
        raise store.damaged(index_dir, f"{folder.name}/{BASE}/{lexical.FOLDER}", "its chunk ids are not this index's")
