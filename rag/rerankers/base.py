"""The reranker role: a cross-encoder scores (question, passage) pairs with attention across both.

The bi-encoder embedder compares a question and a passage embedded apart; a cross-encoder reads
them as one sequence ([CLS] question [SEP] passage [SEP]) and a one-logit head scores the pair.
It costs one forward pass per candidate, so it reranks the retriever's top few rather than the
whole index, and its order is fused with the retriever's (`rag.rerankers.fusion`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from rag.config import DEFAULT_RERANK_C, DEFAULT_RERANK_POOL, DEFAULT_RERANK_WEIGHT
from rag.errors import RagError

MARKER = "rag-reranker.json"  # in a model folder: rag trained it (settings, metrics, the fusion chosen)


class Reranker(Protocol):
    """Scores candidate passages for a question: higher is more relevant (raw logits)."""

    name: str
    runtime: str  # "onnxruntime" or "transformers"
    dtype: str

    def score(self, question: str, passages: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class RerankSettings:
    """Which reranker, over how many candidates, and how its order is fused with the retriever's.

    weight: the reranker's weight in the rank fusion (the retriever's is 1); `inf` takes the
    reranker's order alone. c: the fusion's rank constant (see `rag.rerankers.fusion`).
    """

    model: str
    pool: int = DEFAULT_RERANK_POOL
    weight: float = DEFAULT_RERANK_WEIGHT
    c: float = DEFAULT_RERANK_C

    def __post_init__(self):
        if self.pool < 1:
            raise RagError(f"--rerank-pool must be at least 1, got {self.pool}")
        if not self.weight >= 0:  # also refuses NaN
            raise RagError(f"the rerank weight must be 0 or more, got {self.weight}")
        if not self.c >= 0:
            raise RagError(f"the rerank fusion constant must be 0 or more, got {self.c}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["weight"] = "inf" if self.weight == float("inf") else self.weight  # JSON has no infinity
        return out

    @classmethod
    def from_dict(cls, values: dict) -> RerankSettings:
        """The settings back from `to_dict`'s JSON."""
        return cls(**{**values, "weight": float(values.get("weight", DEFAULT_RERANK_WEIGHT))})

    def describe(self) -> str:
        how = "its order alone" if self.weight == float("inf") else f"fused, weight {self.weight:g}, c {self.c:g}"
        return f"reranked by {self.model} (top {self.pool}, {how})"
