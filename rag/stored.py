"""The chunks meta.sqlite stores, read for writing a generation's search files: ids, vectors and
BM25 term ids, a batch at a time, so a million vectors never sit in memory twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

BATCH = 50_000
LIVE = "c.gen_added IS NOT NULL AND c.gen_removed IS NULL"  # in the current generation
PENDING = "c.gen_added IS NULL"  # added by the update being written


@dataclass
class Rows:
    """Chunk ids, their vectors and their BM25 term ids (with repeats), in the same order."""

    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dimension)
    terms: list[np.ndarray]  # per chunk, int32

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, start: int, end: int) -> Rows:
        return Rows(self.ids[start:end], self.vectors[start:end], self.terms[start:end])


class StoredChunks:
    """Queries over meta.sqlite's chunk and vector tables, for one writer."""

    def __init__(self, db: sqlite3.Connection, dimension: int, table: str = "vectors") -> None:
        self.db, self.dimension = db, dimension
        self.table = table  # where the vectors are: `vectors`, or `next_vectors` while a rebuild changes the embedder

    def select(
        self,
        where: str,
        args: Sequence = (),
        exclude: np.ndarray | None = None,
        every: bool = False,
        batch: int = BATCH,
    ) -> Iterator[Rows]:
        """The chunks matching `where` (not in `exclude`), by id, in batches. `every` (most rows
        match): read in id order rather than look them up by generation."""
        gone = set(exclude.tolist()) if exclude is not None else set()
        order = "c.id" if every else "c.id + 0"  # + 0: find the rows by generation, then sort them
        rows = self.db.execute(
            f"SELECT c.id, v.vector, v.terms FROM chunks c JOIN {self.table} v ON v.sha256 = c.sha256 WHERE {where} "
            f"ORDER BY {order}",
            tuple(args),
        )
        yield from self._batches(((cid, vector, term) for cid, vector, term in rows if cid not in gone), batch)

    def of(self, ids: np.ndarray, batch: int = BATCH) -> Iterator[Rows]:
        """The chunks with these ids, in the order given."""

        def rows():
            listed = [int(i) for i in ids]
            for start in range(0, len(listed), 500):
                part = listed[start : start + 500]
                found = {
                    r[0]: r
                    for r in self.db.execute(
                        f"SELECT c.id, v.vector, v.terms FROM chunks c JOIN {self.table} v ON v.sha256 = c.sha256 "
                        f"WHERE c.id IN ({','.join('?' * len(part))})",
                        part,
                    )
                }
                yield from (found[i] for i in part)

        yield from self._batches(rows(), batch)

    def _batches(self, rows, batch: int) -> Iterator[Rows]:
        ids = np.empty(batch, dtype=np.int64)
        vectors = np.empty((batch, self.dimension), dtype=np.float32)
        terms: list[np.ndarray] = []
        n = 0
        for cid, vector, term in rows:
            ids[n] = cid
            vectors[n] = np.frombuffer(vector, dtype=np.float32)
            terms.append(np.frombuffer(term, dtype=np.int32))
            n += 1
            if n == batch:
                yield Rows(ids.copy(), vectors.copy(), terms)
                terms, n = [], 0
        if n:
            yield Rows(ids[:n].copy(), vectors[:n].copy(), terms)

    def added_since(self, generation: int) -> list[tuple[str, tuple]]:
        """What a base written at `generation` lacks: chunks live now but added after it, and the
        pending ones (as `select` arguments)."""
        return [("c.gen_added > ? AND c.gen_removed IS NULL", (generation,)), (PENDING, ())]

    def count(self, where: str, args: Sequence = ()) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM chunks c WHERE {where}", tuple(args)).fetchone()[0]

    def added_after(self, ids: np.ndarray, generation: int) -> np.ndarray:
        """Those of `ids` whose chunks were added after `generation` (so they are not in its base)."""
        found: list[int] = []
        listed = [int(i) for i in ids]
        for start in range(0, len(listed), 500):
            part = listed[start : start + 500]
            found += [
                row[0]
                for row in self.db.execute(
                    f"SELECT id FROM chunks WHERE gen_added > ? AND id IN ({','.join('?' * len(part))})",
                    [generation, *part],
                )
            ]
        return np.array(sorted(found), dtype=np.int64)

    def sample(self, n: int, exclude: np.ndarray) -> np.ndarray:
        """A random sample of n vectors of the chunks the new generation will hold (ivfpq training)."""
        gone = set(exclude.tolist())
        rows = [
            r
            for r in self.db.execute(
                f"SELECT c.id, v.vector FROM chunks c JOIN {self.table} v ON v.sha256 = c.sha256 "
                f"WHERE ({LIVE}) OR {PENDING} ORDER BY RANDOM() LIMIT ?",
                (n + len(gone),),
            )
            if r[0] not in gone
        ][:n]
        return np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dimension)
