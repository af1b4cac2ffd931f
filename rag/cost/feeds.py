"""What each way of feeding k passages gives the model, in tokens: pure arithmetic, no torch.

Three ways, as rag runs them: an encoder-decoder reads the question and the passages joined,
cut at its input window (512 tokens, as the prompt budget does); or Fusion-in-Decoder, one
encoder input per passage (question + passage, each cut only to its own window); a
decoder-only model reads them joined, cut at its window minus the room kept for the answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rag.cost.archs import DECODER_ONLY, ENCODER_DECODER

CONCAT = "concat"
FID = "fid"
MODES = (CONCAT, FID)


@dataclass(frozen=True)
class Feed:
    """The input of one measurement: how long each encoder input (or the prompt) is.

    `passage_tokens_given` is what is left of the k passages after the cut; the rest was cut
    away, so a concatenated mode past its window costs the same as at the window."""

    arch: str
    family: str
    mode: str
    k: int
    input_lengths: tuple[int, ...]  # one per encoder input (FiD: k of them) or the one prompt
    window: int  # the window each input was cut to
    passage_tokens_asked: int
    passage_tokens_given: int

    @property
    def input_tokens(self) -> int:
        """Encoder tokens (enc-dec: what the cross-attention cache holds) or prompt tokens."""
        return sum(self.input_lengths)

    @property
    def label(self) -> str:
        return line_label(self.arch, self.family, self.mode)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_lengths": list(self.input_lengths), "input_tokens": self.input_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feed:
        fields = {k: v for k, v in data.items() if k != "input_tokens"}
        return cls(**{**fields, "input_lengths": tuple(fields["input_lengths"])})


def line_label(arch: str, family: str, mode: str) -> str:
    """'flan-t5-base enc-dec FiD', 'gpt2 dec-only concat': one plotted line."""
    kind = "enc-dec" if family == ENCODER_DECODER else "dec-only"
    return f"{arch} {kind} {'FiD' if mode == FID else 'concat'}"


def modes_for(family: str, wanted: tuple[str, ...]) -> list[str]:
    """The modes an architecture runs: FiD only for encoder-decoders (it needs an encoder)."""
    return [m for m in wanted if m == CONCAT or family == ENCODER_DECODER]


def window_for(family: str, config: Any, new_tokens: int) -> int:
    """Tokens one input may take, from the project's own window rules (seq2seq.py, causal.py)."""
    if family == ENCODER_DECODER:
        from rag.generators.seq2seq import encoder_window

        return encoder_window(config)
    from rag.generators.causal import decoder_window

    return decoder_window(config) - new_tokens  # prompt and answer share the window


def make_feed(
    arch: str, family: str, mode: str, k: int, *, window: int, question_tokens: int, passage_tokens: int
) -> Feed:
    """The token counts for k passages of `passage_tokens` plus a question of `question_tokens`.

    Concatenated: one input, question first, passages after, cut at `window` (the last passage
    given is cut mid-way, as the budget cuts the first passage that does not fit whole). FiD: k
    inputs of question + passage, each cut to `window` on its own."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if question_tokens >= window:
        raise ValueError(f"a {question_tokens}-token question leaves no room in the {window}-token window")
    asked = k * passage_tokens
    if mode == FID:
        if family != ENCODER_DECODER:
            raise ValueError("Fusion-in-Decoder needs an encoder-decoder")
        each = min(question_tokens + passage_tokens, window)
        return Feed(arch, family, mode, k, (each,) * k, window, asked, k * (each - question_tokens))
    given = min(asked, window - question_tokens)
    return Feed(arch, family, mode, k, (question_tokens + given,), window, asked, given)


def cached_tokens(family: str, feed: Feed, new_tokens: int) -> int:
    """Positions the decoder's self-attention cache holds once `new_tokens` are generated.

    Decoder-only: the prompt and every generated token but the last (never fed back).
    Encoder-decoder: the start token and every generated token but the last."""
    return feed.input_tokens + new_tokens - 1 if family == DECODER_ONLY else new_tokens
