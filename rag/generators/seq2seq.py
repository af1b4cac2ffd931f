"""Encoder-decoder generators (the T5 family): the prompt goes to the encoder, the answer
comes out of the decoder, so the input window does not shrink with the answer's length."""
from __future__ import annotations

from rag.generators.base import ENCODER_DECODER
from rag.generators.hf import HFGenerator

# T5 was trained on 512-token inputs; relative positions allow more, at quadratic cost.
DEFAULT_INPUT_WINDOW = 512


class Seq2SeqGenerator(HFGenerator):
    """An `AutoModelForSeq2SeqLM`; `context_window` is the encoder input budget."""

    family = ENCODER_DECODER

    def input_budget(self, max_new_tokens: int) -> int:
        return self.context_window

    def budget_explanation(self, max_new_tokens: int) -> str:
        return f"input window {self.context_window} tokens"

    def output_start(self, prompt_len: int) -> int:
        return 1  # the decoder's output row begins with its start token, not generated


def encoder_window(config: object, requested: int | None = None) -> int:
    """The encoder input budget: the requested size, else 512."""
    return int(requested) if requested else DEFAULT_INPUT_WINDOW
