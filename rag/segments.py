"""A generation's search files: base segments, a small delta segment, and the base ids deleted since.

    gen-000007/
      base-000/ base-001/ ...   the chunks as of the last merge, at most SEGMENT_CHUNKS each:
                                index.faiss and bm25/*.npy; hard links to the previous generation's
                                files while a segment is unchanged
      delta/                    chunks added since the last merge (FAISS flat: exact)
      deleted.npy               ids of base chunks retired since the last merge
      ivfpq-trained.faiss       (ivfpq) the empty trained index every segment is a copy of

An update writes only the delta and the deleted list, whose size grows with what changed
since the last merge, not with the index. When they outgrow MERGE_FRACTION of the base, the
update merges them: base segments holding no deleted chunk are linked as they are, those
holding some are rewritten without them (their files read, checked and updated in place), and
the chunks added since fill the last segment and then new ones (Lucene's segments, simplified). Writing holds one segment in memory at a time, so
indexing a very large corpus or file needs memory for SEGMENT_CHUNKS chunks, not for all.

A search asks every segment, the base segments through a selector that skips deleted ids, and
BM25 takes its statistics (N, document frequencies, average length) over the live chunks of all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from . import faiss_index, lexical, store
from .errors import IndexError_
from .manifest import Manifest
from .stored import LIVE, PENDING, Rows, StoredChunks

MERGE_FRACTION = 0.1
SEGMENT_CHUNKS = 200_000
DELTA, DELETED, TRAINED = "delta", "deleted.npy", "ivfpq-trained.faiss"


def base_name(i: int) -> str:
    return f"base-{i:03d}"


def should_merge(base: int, deleted: int, delta: int) -> bool:
    """Whether the delta and the deletions have outgrown the base enough to merge them into it."""
    return delta + deleted > MERGE_FRACTION * max(base - deleted, 0)


def read_deleted(folder: Path, manifest: Manifest) -> np.ndarray:
    """The deleted ids of a generation, checked against the recorded checksum (a small file)."""
    path = folder / DELETED
    if store.file_sha256(path) != manifest.files.get(DELETED, {}).get("sha256"):
        raise ValueError(f"{DELETED} differs from its checksum")
    return np.load(path, allow_pickle=False)


# -- reading ------------------------------------------------------------------------------------


class Generation:
    """One generation opened for searching: its FAISS segments, the deleted ids, and (on first
    use) its BM25 segments."""

    def __init__(self, folder: Path, manifest: Manifest, bases: list, delta, deleted: np.ndarray) -> None:
        self.folder, self.manifest = folder, manifest
        self.bases, self.delta, self.deleted = bases, delta, deleted
        self._params = faiss_index.search_params(manifest.index_type, manifest.index_params, deleted)
        self._postings: list[tuple[lexical.Postings, np.ndarray | None]] | None = None

    def __len__(self) -> int:
        return sum(int(b.ntotal) for b in self.bases) - len(self.deleted) + int(self.delta.ntotal)

    def dense(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, the k nearest live chunks of all segments, by inner product."""
        parts = []
        for index, params in [*((b, self._params) for b in self.bases), (self.delta, None)]:
            n = int(index.ntotal)
            if n:
                parts.append(faiss_index.search(index, vectors, min(k, n), params))
        out = []
        for q in range(len(vectors)):
            hits = [(int(i), float(s)) for scores, ids in parts for i, s in zip(ids[q], scores[q]) if i >= 0]
            hits.sort(key=lambda hit: (-hit[1], hit[0]))
            out.append(hits[:k])
        return out

    def faiss_ids(self) -> np.ndarray | None:
        """The live ids the FAISS segments hold (None where FAISS keeps no list of them: ivfpq)."""
        ids = [faiss_index.ids_of(index) for index in [*self.bases, self.delta]]
        if any(part is None for part in ids):
            return None
        bases = np.concatenate(ids[:-1]) if len(ids) > 1 else np.zeros(0, np.int64)
        return np.concatenate([bases[~np.isin(bases, self.deleted)], ids[-1]])

    def postings(self) -> list[tuple[lexical.Postings, np.ndarray | None]]:
        """(postings, live-row mask or None) per segment: memory-mapped, loaded on first use."""
        if self._postings is None:
            segments = []
            for i in range(len(self.bases)):
                postings = lexical.Postings.load(self.folder / base_name(i))
                segments.append((postings, ~np.isin(np.asarray(postings.chunk_ids), self.deleted)))
            segments.append((lexical.Postings.load(self.folder / DELTA), None))
            self._postings = segments
        return self._postings

    def lexical(self, query_terms, k: int) -> list[list[tuple[int, float]]]:
        return lexical.search_segments(self.postings(), query_terms, k)


def open_generation(index_dir: Path, manifest: Manifest) -> Generation:
    """Read a generation's FAISS segments and deleted ids, checking sizes, counts and ids against
    the manifest. FileNotFoundError when its folder is gone (a writer retired it); IndexError_
    naming the file for anything damaged."""
    folder = store.gen_dir(index_dir, manifest.generation)
    sizes = list(manifest.counts.get("segments", []))
    names = [base_name(i) for i in range(len(sizes))] + [DELTA]
    indexes = []
    for name, expected in zip(names, sizes + [manifest.counts.get("delta")]):
        rel = f"{name}/{faiss_index.FILE}"
        where, path = f"{folder.name}/{rel}", folder / rel
        size, recorded = path.stat().st_size, manifest.files.get(rel, {}).get("size")
        store.check_access(path)
        if size != recorded:
            raise store.damaged(index_dir, where, f"it has {size} bytes, the manifest says {recorded}")
        try:
            index, _ = faiss_index.read(path)
        except RuntimeError:
            raise store.damaged(index_dir, where, "FAISS cannot read it") from None
        if index.ntotal != expected or index.d != manifest.dimension:
            raise store.damaged(
                index_dir,
                where,
                f"it holds {index.ntotal} vectors of {index.d} dimensions, the "
                f"manifest says {expected} of {manifest.dimension}",
            )
        faiss_index.configure(index, manifest.index_type if name != DELTA else "flat", manifest.index_params)
        indexes.append(index)
    try:
        deleted = read_deleted(folder, manifest)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise store.damaged(index_dir, f"{folder.name}/{DELETED}", e) from None
    generation = Generation(folder, manifest, indexes[:-1], indexes[-1], deleted)
    ids = generation.faiss_ids()
    if len(deleted) != manifest.counts.get("deleted") or (ids is not None and store.id_sum(ids) != manifest.id_sum):
        for name in names:  # bytes changed in place, or a file (or meta.sqlite) from another index?
            rel = f"{name}/{faiss_index.FILE}"
            if store.file_sha256(folder / rel) != manifest.files.get(rel, {}).get("sha256"):
                raise store.damaged(
                    index_dir,
                    f"{folder.name}/{rel}",
                    "its ids are not this index's chunks and its checksum differs from the one recorded",
                )
        raise IndexError_(
            f"index {index_dir} is damaged: {store.META} does not describe the files of {folder.name} (their checksums "
            f"match, their chunk ids do not: {store.META} copied from another index?); run `rag index FOLDER --index "
            f"{index_dir} --rebuild` to build it again from the documents"
        )
    return generation


def check_postings(generation: Generation, index_dir: Path) -> None:
    """The cheap checks of every BM25 segment against the manifest; IndexError_ naming the file."""
    folder, manifest = generation.folder, generation.manifest
    try:
        segments = generation.postings()
    except store.DamagedFile as e:
        raise store.damaged(index_dir, f"{folder.name}/{e.name}", e.why) from None
    names = [base_name(i) for i in range(len(segments) - 1)] + [DELTA]
    expected = list(manifest.counts.get("segments", [])) + [manifest.counts.get("delta")]
    for name, (postings, _), n in zip(names, segments, expected):
        for file in lexical.CHECKED_ON_LOAD:  # small: a few ms at a million chunks (BENCHMARKS.md)
            rel = f"{name}/{lexical.FOLDER}/{file}"
            if store.file_sha256(folder / rel) != manifest.files.get(rel, {}).get("sha256"):
                raise store.damaged(index_dir, f"{folder.name}/{rel}", "its checksum differs from the one recorded")
        problem = postings.check()
        if problem is None and len(postings) != n:
            problem = f"it has {len(postings)} rows, the manifest says {n}"
        if problem:
            raise store.damaged(index_dir, f"{folder.name}/{name}/{lexical.FOLDER}", problem)
    ids = np.concatenate(
        [np.asarray(p.chunk_ids) if live is None else np.asarray(p.chunk_ids)[live] for p, live in segments]
    )
    if store.id_sum(ids) != manifest.id_sum:
        raise store.damaged(
            index_dir, f"{folder.name}/{names[0]}/{lexical.FOLDER}", "its chunk ids are not this index's"
        )


# -- writing ------------------------------------------------------------------------------------


class SegmentWriter:
    """Writes one new generation's search files into `folder` from the chunks meta.sqlite stores
    (`chunks`) and, where it can, the previous generation's files."""

    def __init__(
        self, index_dir: Path, folder: Path, index_type: str, chunks: StoredChunks, warn: Callable[[str], None]
    ) -> None:
        self.index_dir, self.folder, self.index_type = index_dir, folder, index_type
        self.chunks, self.warn = chunks, warn
        self.dimension = chunks.dimension
        self.files: dict[str, dict] = {}
        self.sizes: list[int] = []  # rows of each base segment written
        self.params: dict = {}
        self.template = None  # ivfpq: the trained empty index segments are copies of

    # The two ways to write a generation.

    def delta_update(self, prev: Manifest, removed: np.ndarray, n_new: int) -> dict | None:
        """The cheap update: link the base segments, write the delta and the deleted ids. None
        when they have outgrown the base (or the previous deleted list is damaged): then merge."""
        prev_folder = store.gen_dir(self.index_dir, prev.generation)
        try:
            deleted = read_deleted(prev_folder, prev)
        except (OSError, ValueError) as e:
            self.warn(f"{prev_folder / DELETED} is damaged ({e}): the search files are rebuilt from the stored vectors")
            return None
        since = prev.base_generation
        in_delta = self.chunks.count("c.gen_added > ? AND c.gen_removed IS NULL", (since,))
        delta_removed = self.chunks.added_after(removed, since)
        deleted = np.union1d(deleted, np.setdiff1d(removed, delta_removed))
        n_delta = in_delta - len(delta_removed) + n_new
        if should_merge(prev.counts["base"], len(deleted), n_delta):
            return None
        self._link(
            prev_folder,
            prev,
            [(base_name(i), base_name(i)) for i in range(len(prev.counts["segments"]))]
            + ([(TRAINED, TRAINED)] if TRAINED in prev.files else []),
        )
        self.sizes, self.params = list(prev.counts["segments"]), dict(prev.index_params)
        index, _ = faiss_index.create("flat", self.dimension, 0)
        ids, terms = self._fill(index, self.chunks.added_since(since), removed)
        self._write(DELTA, index, lexical.Postings.build(ids, terms))
        self._write_deleted(deleted)
        return self._counts(len(ids), len(deleted))

    def merge(self, prev: Manifest | None, removed: np.ndarray, total: int) -> dict:
        """A new base: every live chunk in base segments, an empty delta, nothing deleted. Base
        segments of `prev` holding no deleted chunk are linked, the others rewritten without them,
        and the chunks added since appended. Without a usable `prev`, everything is written from
        the stored vectors."""
        if prev is None or not faiss_index.can_update(self.index_type, prev.index_params, 0, total):
            return self._write_all(removed, total)
        prev_folder = store.gen_dir(self.index_dir, prev.generation)
        try:
            deleted = np.union1d(read_deleted(prev_folder, prev), removed)
            deleted = np.setdiff1d(deleted, self.chunks.added_after(deleted, prev.base_generation))
            if self.index_type == "ivfpq":
                self.template = self._previous_faiss(prev_folder, TRAINED, prev)
                self._link(prev_folder, prev, [(TRAINED, TRAINED)])
            self.params = dict(prev.index_params)
            since = prev.base_generation
            n_added = (
                self.chunks.count("c.gen_added > ? AND c.gen_removed IS NULL", (since,))
                - len(self.chunks.added_after(removed, since))
                + self.chunks.count(PENDING)
            )
            sizes, opened = prev.counts["segments"], None
            for i, n in enumerate(sizes):
                name = base_name(i)
                ids = self._segment_ids(prev_folder, name, prev)
                gone = np.intersect1d(ids, deleted)
                if len(gone) == len(ids):
                    continue  # every chunk of it is gone
                fill_last = i == len(sizes) - 1 and n_added > 0 and n - len(gone) < SEGMENT_CHUNKS
                if not len(gone) and not fill_last:
                    self._link(prev_folder, prev, [(name, base_name(len(self.sizes)))])
                    self.sizes.append(n)
                    continue
                index, postings = self._rewrite(prev_folder, name, prev, ids, gone)
                if fill_last:
                    opened = (index, postings)
                else:
                    self._finish_segment(index, postings)
        except _Damaged as e:
            self.warn(f"{e}: the search files are rebuilt from the stored vectors (nothing is embedded again)")
            self._reset()
            return self._write_all(removed, total)
        # The chunks added since go into the last segment while it has room, then into new ones.
        index, postings = opened if opened is not None else (None, None)
        for rows in self._select(self.chunks.added_since(since), removed):
            index, postings = self._append(index, postings, rows)
        if index is not None:
            self._finish_segment(index, postings)
        return self._empty_delta()

    # Helpers.

    def _write_all(self, removed: np.ndarray, total: int) -> dict:
        if self.index_type == "ivfpq":
            sample = self.chunks.sample(faiss_index.training_size(total), removed)
            self.template, self.params = faiss_index.create("ivfpq", self.dimension, total, sample)
            del sample
            self.files[TRAINED] = faiss_index.write(self.template, self.folder / TRAINED, store.write_file)
        index = postings = None
        queries = [(LIVE, (), True), (PENDING, (), False)]
        for where, args, every in queries:
            for rows in self.chunks.select(where, args, removed, every):
                index, postings = self._append(index, postings, rows)
        if index is not None:
            self._finish_segment(index, postings)
        return self._empty_delta()

    def _append(self, index, postings, rows: Rows):
        """Add rows to the open segment (opening one if needed), closing it when full."""
        start = 0
        while start < len(rows):
            if index is not None and int(index.ntotal) >= SEGMENT_CHUNKS:
                self._finish_segment(index, postings)
                index = postings = None
            if index is None:
                index, postings = self._new_segment(), lexical.Postings.build(np.zeros(0, np.int64), [])
            room = SEGMENT_CHUNKS - int(index.ntotal)
            part = rows.part(start, start + room)
            index.add_with_ids(part.vectors, part.ids)
            postings = postings.update(np.zeros(0, np.int64), part.ids, part.terms)
            start += len(part)
            if int(index.ntotal) >= SEGMENT_CHUNKS:
                self._finish_segment(index, postings)
                index = postings = None
        return index, postings

    def _new_segment(self):
        if self.index_type == "ivfpq":
            import faiss

            return faiss.clone_index(self.template)
        index, params = faiss_index.create(self.index_type, self.dimension, 0)
        self.params = self.params or params
        return index

    def _finish_segment(self, index, postings: lexical.Postings) -> None:
        self._write(base_name(len(self.sizes)), index, postings)
        self.sizes.append(int(index.ntotal))

    def _rewrite(self, prev_folder: Path, name: str, prev: Manifest, ids: np.ndarray, gone: np.ndarray):
        """A previous base segment without the chunks `gone`: its FAISS file read (and checked)
        and the ids removed in place; HNSW, which cannot remove, rebuilt from the stored vectors."""
        postings = self._previous_postings(prev_folder, name, prev).update(gone, [], [])
        if self.index_type == "hnsw" and len(gone):
            index = self._new_segment()
            for rows in self.chunks.of(np.setdiff1d(ids, gone)):
                index.add_with_ids(rows.vectors, rows.ids)
        else:
            index = self._previous_faiss(prev_folder, f"{name}/{faiss_index.FILE}", prev)
            if len(gone):
                index.remove_ids(np.asarray(gone, dtype=np.int64))
        return index, postings

    def _previous_postings(self, prev_folder: Path, name: str, prev: Manifest) -> lexical.Postings:
        try:
            for file in lexical.FILES:
                rel = f"{name}/{lexical.FOLDER}/{file}"
                if store.file_sha256(prev_folder / rel) != prev.files[rel]["sha256"]:
                    raise ValueError(f"{rel} differs from its checksum")
            postings = lexical.Postings.load(prev_folder / name)
            if postings.check():
                raise ValueError(postings.check())
            return postings
        except (OSError, ValueError, KeyError, store.DamagedFile) as e:
            raise _Damaged(f"the BM25 files of {prev_folder / name} are damaged ({e})") from None

    def _select(self, queries, exclude) -> Iterator[Rows]:
        for where, args in queries:
            yield from self.chunks.select(where, args, exclude)

    def _fill(self, index, queries, exclude) -> tuple[np.ndarray, list]:
        ids, terms = [], []
        for rows in self._select(queries, exclude):
            index.add_with_ids(rows.vectors, rows.ids)
            ids.append(rows.ids)
            terms += rows.terms
        return (np.concatenate(ids) if ids else np.zeros(0, np.int64)), terms

    def _empty_delta(self) -> dict:
        index, _ = faiss_index.create("flat", self.dimension, 0)
        self._write(DELTA, index, lexical.Postings.build(np.zeros(0, np.int64), []))
        self._write_deleted(np.zeros(0, np.int64))
        return self._counts(0, 0)

    def _counts(self, delta: int, deleted: int) -> dict:
        return {"segments": list(self.sizes), "base": sum(self.sizes), "delta": delta, "deleted": deleted}

    def _write(self, name: str, index, postings: lexical.Postings) -> None:
        target = self.folder / name
        target.mkdir()
        self.files[f"{name}/{faiss_index.FILE}"] = faiss_index.write(index, target / faiss_index.FILE, store.write_file)
        self.files.update({f"{name}/{rel}": info for rel, info in postings.save(target, store.write_file).items()})

    def _write_deleted(self, ids: np.ndarray) -> None:
        array = np.ascontiguousarray(np.sort(np.asarray(ids, dtype=np.int64)))
        self.files[DELETED] = store.write_file(self.folder / DELETED, lambda f: np.save(f, array, allow_pickle=False))

    def _link(self, prev_folder: Path, prev: Manifest, renames: list[tuple[str, str]]) -> None:
        """Carry files of the previous generation over as hard links (copies where links are
        impossible), under new names: an unchanged segment costs nothing."""
        for old, new in renames:
            for rel, info in prev.files.items():
                if rel == old or rel.startswith(old + "/"):
                    target = self.folder / (new + rel[len(old) :])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(prev_folder / rel, target)
                    except OSError:
                        shutil.copy2(prev_folder / rel, target)
                    self.files[new + rel[len(old) :]] = info

    def _previous_faiss(self, prev_folder: Path, rel: str, prev: Manifest):
        recorded = prev.files.get(rel, {}).get("sha256")
        try:
            index, digest = faiss_index.read(prev_folder / rel, sha256=recorded)
        except (RuntimeError, OSError):
            index, digest = None, None
        if index is None or digest != recorded:
            raise _Damaged(f"{prev_folder / rel} is damaged")
        return index

    def _segment_ids(self, prev_folder: Path, name: str, prev: Manifest) -> np.ndarray:
        """The chunk ids of a previous base segment, checked against their recorded checksum."""
        rel = f"{name}/{lexical.FOLDER}/chunk_ids.npy"
        try:
            if store.file_sha256(prev_folder / rel) != prev.files[rel]["sha256"]:
                raise ValueError("it differs from its checksum")
            return np.load(prev_folder / rel, allow_pickle=False)
        except (OSError, ValueError, KeyError) as e:
            raise _Damaged(f"{prev_folder / rel} is damaged ({e})") from None

    def _reset(self) -> None:
        for child in self.folder.iterdir():
            if child.name != store.GEN_MARKER:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.files, self.sizes, self.params, self.template = {}, [], {}, None


class _Damaged(Exception):
    """A file of the previous generation that does not match its checksum."""


__all__ = ["Generation", "SegmentWriter", "open_generation", "check_postings", "should_merge", "IndexError_"]
