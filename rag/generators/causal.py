"""Decoder-only generators (GPT-2, SmolLM2): prompt and answer share one window, so the
prompt may use the window minus the room kept for `max_new_tokens`."""

from __future__ import annotations

from rag.generators.base import DECODER_ONLY
from rag.generators.hf import HFGenerator

# Long-context models (SmolLM2: 8192) are capped: on CPU a 2048-token prompt is already slow,
# and retrieval rarely needs more.
DEFAULT_WINDOW_CAP = 2048


class CausalGenerator(HFGenerator):
    """An `AutoModelForCausalLM`; `context_window` is the total (prompt + answer) window."""

    family = DECODER_ONLY

    def input_budget(self, max_new_tokens: int) -> int:
        return self.context_window - max_new_tokens

    def budget_explanation(self, max_new_tokens: int) -> str:
        return f"window {self.context_window} tokens minus {max_new_tokens} kept for the answer"

    def output_start(self, prompt_len: int) -> int:
        return prompt_len  # the output row repeats the prompt first


def model_window(config: object) -> int | None:
    """The model's own position limit, under whichever name its config uses."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def decoder_window(config: object, requested: int | None = None) -> int:
    """The total window: the model's limit, capped at `requested` or DEFAULT_WINDOW_CAP."""
    cap = int(requested) if requested else DEFAULT_WINDOW_CAP
    native = model_window(config)
    return min(native, cap) if native else cap
