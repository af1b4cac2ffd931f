"""Encoder-decoder generators (the T5 family): the prompt goes to the encoder, the answer
comes out of the decoder, so the input window does not shrink with the answer's length."""

from __future__ import annotations

from collections.abc import Sequence

from rag.documents import Passage
from rag.generators.base import ENCODER_DECODER
from rag.generators.hf import HFGenerator
from rag.generators.prompts import Fit

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

    def prepare_fid(
        self, question: str, passages: Sequence[Passage], max_new_tokens: int = 64
    ) -> tuple[Fit, list[list[int]]]:
        given, items, inputs, prompts, fixed = [], [], [], [], 0
        for passage in passages:
            fit, ids = self.prepare(question, [passage], max_new_tokens)
            fixed = fit.fixed_tokens
            items.extend(fit.budget)
            if fit.passages:
                given.extend(fit.passages)
                inputs.append(ids)
                prompts.append(fit.prompt)
        if not inputs:  # no passage at all (or none fits even cut): the question alone
            fit, ids = self.prepare(question, [], max_new_tokens)
            inputs, prompts, fixed = [ids], [fit.prompt], fit.fixed_tokens
        total = sum(len(ids) for ids in inputs)
        return Fit(given, items, "\n\n".join(prompts), total, fixed), inputs


def encoder_window(config: object, requested: int | None = None) -> int:
    """The encoder input budget: the requested size, else 512."""
    return int(requested) if requested else DEFAULT_INPUT_WINDOW
