"""A cross-encoder reranker: tokenise (question, passage) pairs and score them (batches as the backend says)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.models.batch import pad_rows


class CrossEncoderReranker:
    """Scores pairs with a `tokenizers.Tokenizer` and a backend (`rag.rerankers.backends`).

    Pairs longer than `max_length` tokens are cut longest-first: the passage's end, in practice
    (a question longer than the passage is cut too, rather than refused).
    """

    def __init__(self, name: str, tokenizer, scores, max_length: int = 256, pad_id: int = 0) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length, strategy="longest_first")
        self.scores = scores
        self.runtime = scores.runtime
        self.dtype = scores.dtype
        self.max_length = max_length
        self.pad_id = pad_id
        self.source = ""
        self.weights_key = ""

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        """One logit per passage (higher: more relevant), in the passages' order."""
        out: list[float] = []
        batch = self.scores.batch
        for start in range(0, len(passages), batch):
            pairs = [(question, p) for p in passages[start : start + batch]]
            out += [float(x) for x in self.scores(self._arrays(pairs))]
        return out

    def _arrays(self, pairs) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(pairs)
        return pad_rows([e.ids for e in encodings], [e.type_ids for e in encodings], self.pad_id)
