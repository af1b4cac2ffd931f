"""The generator contract: what every generator takes, what it returns, and how it fails.

Pure data and a Protocol, no torch: the CLI, the pipeline and the benchmarks code against
these names, and importing them must stay instant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from rag.answers import (  # noqa: F401 - the answer types, defined below both roles, re-exported here
    CUT,
    DECODER_ONLY,
    DROPPED,
    ENCODER_DECODER,
    ENCODER_ONLY,
    WHOLE,
    Answer,
    BudgetError,
    BudgetItem,
    ModelNotAvailable,
    ModeNotSupported,
    Span,
    fid_refusal,
)
from rag.documents import Passage


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a question and retrieved passages into an Answer."""

    name: str
    family: str
    context_window: int

    def generate(
        self,
        question: str,
        passages: list[Passage],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
        extractive: bool = False,
        fid: bool = False,
    ) -> Answer: ...
