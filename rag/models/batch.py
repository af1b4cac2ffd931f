"""Dynamic padding of tokenised rows into the arrays an encoder takes: one recipe for the
reader's windows, the reranker's pairs and the reranker's training batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pad_rows(
    ids: Sequence[Sequence[int]], types: Sequence[Sequence[int] | None], pad_id: int = 0
) -> dict[str, np.ndarray]:
    """input_ids, attention_mask and token_type_ids, padded to the longest row; a row without
    type ids (a tokenizer that has none) gets zeros."""
    width = max(len(row) for row in ids)
    out_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    out_types = np.zeros((len(ids), width), dtype=np.int64)
    for i, (row, kinds) in enumerate(zip(ids, types)):
        out_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        if kinds is not None:
            out_types[i, : len(row)] = kinds
    return {"input_ids": out_ids, "attention_mask": mask, "token_type_ids": out_types}
