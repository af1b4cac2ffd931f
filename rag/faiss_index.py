"""FAISS index types over unit vectors with inner product (= cosine similarity).

flat is exact and the default; hnsw is a graph index for larger corpora; ivfpq
compresses vectors and must be trained on enough of them.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import RagError

HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 64
PQ_BITS = 8


def ivfpq_lists(n: int) -> int:
    return max(1, min(65536, int(math.sqrt(n))))


def ivfpq_min_chunks(n: int) -> int:
    """FAISS wants ~39 training points per cluster, and 2**PQ_BITS codes per sub-quantiser need data too."""
    return max(39 * ivfpq_lists(n), 4 * 2**PQ_BITS)


def build(index_type: str, ids: np.ndarray, vectors: np.ndarray, dimension: int):
    """A FAISS index holding `vectors` under `ids`, and the parameters to record in the manifest."""
    import faiss

    n = len(ids)
    if index_type == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        params: dict = {}
    elif index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        index = faiss.IndexIDMap2(inner)
        params = {"M": HNSW_NEIGHBOURS, "efSearch": HNSW_EF_SEARCH}
    elif index_type == "ivfpq":
        if n < ivfpq_min_chunks(n):
            raise RagError(
                f"--index-type ivfpq needs at least {ivfpq_min_chunks(n)} chunks to train on; this corpus has {n}: "
                "use --index-type flat (exact, and fast at this size) or hnsw"
            )
        nlist = ivfpq_lists(n)
        m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dimension % m == 0)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFPQ(quantizer, dimension, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(nlist, 16)
        params = {"nlist": nlist, "m": m, "nbits": PQ_BITS, "nprobe": index.nprobe}
    else:
        raise RagError(f"unknown index type {index_type!r}: use flat, hnsw or ivfpq")
    if n:
        index.add_with_ids(vectors, ids)
    return index, params


def configure(index, index_type: str, params: dict) -> None:
    """Restore search-time settings that FAISS does not keep in the file."""
    import faiss

    if index_type == "ivfpq" and "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = params["nprobe"]
    elif index_type == "hnsw" and "efSearch" in params:
        faiss.downcast_index(index.index).hnsw.efSearch = params["efSearch"]
