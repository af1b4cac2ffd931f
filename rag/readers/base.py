"""The reader role: an encoder-only model with a span head that answers by pointing at a span.

A reader is a `Generator` as far as `ask`, `compare` and `bench` are concerned (same
`generate(question, passages) -> Answer`), with family "encoder-only": it reads every passage
and returns the best span, or says the answer is not in the documents.
"""

from __future__ import annotations

from rag.answers import ENCODER_ONLY  # noqa: F401 - the role's family, defined beside the others

NOT_FOUND = "Not in the documents."
MARKER = "rag-reader.json"  # in a model folder: how rag reads it (margin, max answer length, metrics)
