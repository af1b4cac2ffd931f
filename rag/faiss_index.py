"""FAISS index types over unit vectors with inner product (= cosine similarity), and their files.

flat is exact and the default; hnsw is a graph index for larger corpora; ivfpq compresses
vectors and must be trained on enough of them. Indexes are built a segment at a time
(see rag/segments.py); ivfpq segments are copies of one index trained on a sample of the whole
corpus, retrained when the corpus has grown or shrunk fourfold since.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from .errors import RagError

FILE = "index.faiss"
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 64
PQ_BITS = 8
RETRAIN_FACTOR = 4


def ivfpq_lists(n: int) -> int:
    return max(1, min(65536, int(math.sqrt(n))))


def ivfpq_min_chunks(n: int) -> int:
    """FAISS wants ~39 training points per cluster, and 2**PQ_BITS codes per sub-quantiser need data too."""
    return max(39 * ivfpq_lists(n), 4 * 2**PQ_BITS)


def create(index_type: str, dimension: int, n: int, sample: np.ndarray | None = None):
    """An empty FAISS index for `n` vectors (ivfpq is trained on `sample`, drawn from them), and
    the parameters to record in the manifest."""
    import faiss

    if index_type == "flat":
        return faiss.IndexIDMap(faiss.IndexFlatIP(dimension)), {}
    if index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap(inner), {"M": HNSW_NEIGHBOURS, "efSearch": HNSW_EF_SEARCH}
    if index_type == "ivfpq":
        if n < ivfpq_min_chunks(n):
            raise RagError(
                f"--index-type ivfpq needs at least {ivfpq_min_chunks(n)} chunks to train on; this corpus has {n}: "
                "use --index-type flat (exact, and fast at this size) or hnsw"
            )
        nlist = ivfpq_lists(n)
        m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dimension % m == 0)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(quantizer, dimension, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = min(nlist, 16)
        return index, {"nlist": nlist, "m": m, "nbits": PQ_BITS, "nprobe": index.nprobe, "trained_on": n}
    raise RagError(f"unknown index type {index_type!r}: use flat, hnsw or ivfpq")


def training_size(n: int) -> int:
    """How many vectors ivfpq is trained on: FAISS's 256 per list at most, all of them if fewer."""
    return min(n, 256 * ivfpq_lists(n))


def build(index_type: str, ids: np.ndarray, vectors: np.ndarray, dimension: int):
    """A FAISS index holding `vectors` under `ids`, and its parameters (see `create`)."""
    index, params = create(index_type, dimension, len(ids), vectors)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index, params


def can_update(index_type: str, params: dict, removed: int, total_after: int) -> bool:
    """Whether the previous index can be updated in place rather than rebuilt."""
    if index_type == "hnsw":
        return removed == 0
    if index_type == "ivfpq":
        trained = params.get("trained_on", 0)
        return trained > 0 and trained / RETRAIN_FACTOR <= total_after <= trained * RETRAIN_FACTOR
    return True


def search(index, vectors: np.ndarray, k: int, params=None):
    """(scores, ids) of the k best, through `params` (a deleted-id selector) when given."""
    if params is None:
        return index.search(vectors, k)
    return index.search(vectors, k, params=params[0])


def search_params(index_type: str, params: dict, deleted: np.ndarray):
    """Search parameters that skip `deleted` ids (None when nothing is deleted), with the
    selector objects they point at, kept alive beside them."""
    import faiss

    if not len(deleted):
        return None
    batch = faiss.IDSelectorBatch(np.ascontiguousarray(deleted, dtype=np.int64))
    selector = faiss.IDSelectorNot(batch)
    if index_type == "hnsw":
        search = faiss.SearchParametersHNSW(sel=selector, efSearch=params.get("efSearch", HNSW_EF_SEARCH))
    elif index_type == "ivfpq":
        search = faiss.SearchParametersIVF(sel=selector, nprobe=params.get("nprobe", 16))
    else:
        search = faiss.SearchParameters(sel=selector)
    return search, selector, batch


def configure(index, index_type: str, params: dict) -> None:
    """Restore search-time settings that FAISS does not keep in the file."""
    import faiss

    if index_type == "ivfpq" and "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = params["nprobe"]
    elif index_type == "hnsw" and "efSearch" in params:
        faiss.downcast_index(index.index).hnsw.efSearch = params["efSearch"]


def id_sum(index) -> int | None:
    """The sum of the ids an IDMap index holds (mod 2**63): a cheap check that the file belongs to
    this index's chunks. None for index types that keep ids elsewhere (ivfpq)."""
    from .store import id_sum as sum_of

    ids = ids_of(index)
    return None if ids is None else sum_of(ids)


def ids_of(index) -> np.ndarray | None:
    import faiss

    return faiss.vector_to_array(index.id_map) if hasattr(index, "id_map") else None


def write(index, path: Path, write_file) -> dict:
    """Write `index` to `path` through `write_file` (which hashes and fsyncs); its size and hash."""
    import faiss

    def save(f) -> None:
        faiss.write_index(index, faiss.PyCallbackIOWriter(lambda data: f.write(data) or len(data)))

    return write_file(path, save)


def read(path: Path, sha256: str | None = None):
    """Read an index file; with `sha256`, also prove the bytes are those recorded (one pass)."""
    import faiss

    if sha256 is None:
        return faiss.read_index(str(path)), None
    digest = hashlib.sha256()
    with open(path, "rb") as f:

        def read_block(n: int) -> bytes:
            data = f.read(n)
            digest.update(data)
            return data

        index = faiss.read_index(faiss.PyCallbackIOReader(read_block, 1 << 20))
    return index, digest.hexdigest()
