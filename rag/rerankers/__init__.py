"""The reranker role: an encoder-only cross-encoder that reads the question and each candidate
passage together and scores the pair (see `base.py`); loading in `loading.py`, the fusion with
the retriever's ranking in `fusion.py`."""

from rag.rerankers.base import Reranker, RerankSettings  # noqa: F401
