"""The bench's metrics: `rag.metrics` (official SQuAD EM/F1, ranking metrics, percentiles),
which lives below every role so that readers and rerankers evaluate with it without importing
the bench. Re-exported here for the bench's modules and scripts."""

from rag.metrics import (  # noqa: F401
    answer_in_passages,
    dedupe,
    exact_match,
    f1,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    prediction_supported,
    recall_at_k,
)
