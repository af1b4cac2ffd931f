"""What both families share: budget the prompt, tokenise it once, call `model.generate`, time it.

The family classes (seq2seq.py, causal.py) only say how big the input window is and where
the generated tokens start in `generate`'s output. torch is imported inside methods: by the
time a generator exists, loading has imported it anyway.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from rag.documents import Passage
from rag.generators.base import Answer, BudgetError, fid_refusal
from rag.generators.extractive import SpanIndex, end_tokens, vocab_pieces
from rag.generators.fid import fid_encode
from rag.generators.prompts import AnswerStream, Fit, PromptStyle, cut_answer, fit_passages, has_finished_line


class HFGenerator:
    """A transformers model + tokenizer behind the Generator protocol.

    For benchmarks: `prepare()` gives the exact prompt ids and `generation_kwargs()` the exact
    settings that `generate()` hands to `model.generate`, so a bare call can be timed against it.
    """

    family: str = ""
    load_seconds: float = 0.0  # set by load_generator
    questions_trained: int | None = None  # set where rag trained the model (rag-generator.json)
    dtype_reason: str = ""  # set by load_generator: why its weights compute in `dtype` on this CPU

    def __init__(
        self,
        name: str,
        model: Any,
        tokenizer: Any,
        *,
        context_window: int,
        prompt_style: PromptStyle,
        device: str = "cpu",
        source: str = "",
    ) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.context_window = context_window
        self.prompt_style = prompt_style
        self.device = device
        self.source = source
        self.eos_token_ids = _eos_ids(model, tokenizer)
        self.pad_token_id = _pad_id(model, tokenizer, self.eos_token_ids)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.family} window={self.context_window} prompt={self.prompt_style.name}>"

    runtime = "transformers"

    @functools.cached_property
    def vocab_pieces(self) -> list[str | None]:
        """Each token's text, for extractive decoding (decoded once per model: ~1 s per 100k tokens)."""
        return vocab_pieces(self.tokenizer)

    @property
    def dtype(self) -> str:
        """The dtype the weights compute in (a GGUF's 4-bit weights are dequantised on loading)."""
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- family specifics -------------------------------------------------------------

    def input_budget(self, max_new_tokens: int) -> int:
        """Tokens the prompt may take."""
        raise NotImplementedError

    def budget_explanation(self, max_new_tokens: int) -> str:
        raise NotImplementedError

    def output_start(self, prompt_len: int) -> int:
        """Index in `generate`'s output row where the new tokens begin."""
        raise NotImplementedError

    # -- prompt -------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=self.prompt_style.add_special_tokens)

    def prepare(self, question: str, passages: Sequence[Passage], max_new_tokens: int = 64) -> tuple[Fit, list[int]]:
        """Fit passages into the window; return the decision and the final prompt's ids.

        Every candidate prompt is tokenised at most once, and the final prompt's ids are the
        ones counted during fitting (no second tokenisation).
        """
        budget = self.input_budget(max_new_tokens)
        if budget <= 0:
            raise BudgetError(
                f"{self.name}: max_new_tokens={max_new_tokens} leaves no room for a prompt in its "
                f"{self.context_window}-token window; lower max_new_tokens."
            )
        seen: dict[str, list[int]] = {}

        def count(text: str) -> int:
            ids = seen.get(text)
            if ids is None:
                ids = seen[text] = self.encode(text)
            return len(ids)

        try:
            fit = fit_passages(passages, count, budget, question=question, render=self.prompt_style.render)
        except BudgetError as e:
            raise BudgetError(
                f"{self.name}: {e} ({self.budget_explanation(max_new_tokens)}); shorten the question."
            ) from None
        return fit, seen[fit.prompt]

    def prepare_fid(
        self, question: str, passages: Sequence[Passage], max_new_tokens: int = 64
    ) -> tuple[Fit, list[list[int]]]:
        """Fusion-in-Decoder inputs: one prompt per passage (question + that passage), each fitted
        to the window on its own (cut at a sentence, or dropped, as `prepare` would).

        The Fit's budget has one item per passage; an item's `tokens` is what its passage added
        to its own prompt, so `prompt_tokens == len(given) * fixed_tokens + sum(item.tokens)`.
        """
        raise fid_refusal(self.name, self.family)

    # -- generation ---------------------------------------------------------------------

    def generation_kwargs(self, max_new_tokens: int = 64, temperature: float = 0.0) -> dict[str, Any]:
        """Settings for `model.generate`: greedy unless temperature > 0."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_ids,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature))
        else:  # also neutralise sampling defaults a checkpoint's generation_config may carry
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

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
    ) -> Answer:
        """Answer from the passages that fit the window; `extractive` constrains the answer to a
        span of them (extractive.py) and cites the passage that holds it; `fid` (encoder-decoder
        only) encodes each passage on its own and lets the decoder read them all (fid.py)."""
        import torch

        t0 = time.perf_counter()
        if fid:
            fit, inputs = self.prepare_fid(question, passages, max_new_tokens)
            prompt_tokens = sum(len(ids) for ids in inputs)
            start = self.output_start(0)
        else:
            fit, ids = self.prepare(question, passages, max_new_tokens)
            prompt_tokens = len(ids)
            start = self.output_start(len(ids))
        kwargs = self.generation_kwargs(max_new_tokens, temperature)
        stop = self.prompt_style.stop_at_newline
        spans = None
        if extractive:
            spans = SpanIndex([p.text for p in fit.passages], self.vocab_pieces)
            ends = end_tokens(self.tokenizer, self.eos_token_ids, stop)
            kwargs["logits_processor"] = _span_processor(spans, start, ends)
            kwargs["eos_token_id"] = ends
        if on_text is not None:
            kwargs["streamer"] = _make_streamer(self.tokenizer, AnswerStream(on_text, stop))
        if stop and not extractive:  # an extractive answer ends at a newline token (in `ends`)
            kwargs["stopping_criteria"] = _newline_stop(self.tokenizer, start)
        if temperature > 0 and seed is not None:
            torch.manual_seed(seed)

        t1 = time.perf_counter()
        with torch.inference_mode():
            if fid:  # the encoder passes are part of generating, as the one pass is otherwise
                states, mask = fid_encode(self.model, inputs, self.pad_token_id or 0)
                output = self.model.generate(encoder_outputs=states, attention_mask=mask, **kwargs)
            else:
                input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
                output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        t2 = time.perf_counter()

        new_ids = output[0, start:].tolist()
        span = None
        if spans is not None:
            span = spans.locate([i for i in new_ids if i not in kwargs["eos_token_id"] and i != self.pad_token_id])
            if span is not None:
                span.citation = fit.passages[span.passage].citation
            text = spans.answer(span) if span is not None else ""
        else:
            text = cut_answer(self.tokenizer.decode(new_ids, skip_special_tokens=True), stop)
        seconds = t2 - t1
        return Answer(
            question=question,
            text=text,
            generator=self.name,
            family=self.family,
            passages=fit.passages,
            budget=fit.budget,
            prompt_tokens=prompt_tokens,
            output_tokens=len(new_ids),
            span=span,
            extractive=extractive,
            fid=fid,
            runtime=self.runtime,
            dtype=self.dtype,
            dtype_reason=self.dtype_reason,
            questions_trained=self.questions_trained,
            timings={
                "prompt_ms": (t1 - t0) * 1000,
                "generation_ms": seconds * 1000,
                "tokens_per_s": len(new_ids) / seconds if seconds > 0 else 0.0,
            },
        )


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends an answer: the checkpoint's and the tokenizer's (chat models end turns
    with a token, e.g. <|im_end|>, that older configs do not list)."""
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
        for i in value if isinstance(value, (list, tuple)) else [value]:
            if i is not None and i not in ids:
                ids.append(int(i))
    return ids


def _pad_id(model: Any, tokenizer: Any, eos: list[int]) -> int | None:
    for value in (getattr(model.generation_config, "pad_token_id", None), tokenizer.pad_token_id):
        if value is not None:
            return int(value)
    return eos[0] if eos else None


def _make_streamer(tokenizer: Any, sink: AnswerStream) -> Any:
    """A transformers TextStreamer whose finished text pieces go to `sink`."""
    from transformers import TextStreamer

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            sink.feed(text)

    return _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _span_processor(spans: SpanIndex, start: int, ends: list[int]) -> Any:
    """A logits processor that leaves only the tokens continuing a passage span (and, after
    the first token, the end tokens) with finite scores."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    class _SpanOnly(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            mask = torch.full_like(scores, float("-inf"))
            for row in range(input_ids.shape[0]):
                generated = input_ids[row, start:].tolist()
                allowed = spans.next_tokens(generated)
                if generated:
                    allowed += ends
                else:  # an answer starts with a token of text, not an end (a newline ends completions)
                    allowed = [i for i in allowed if i not in ends] or ends
                allowed = [i for i in allowed if i < scores.shape[-1]]
                mask[row, allowed] = 0.0
            return scores + mask

    return LogitsProcessorList([_SpanOnly()])


def _newline_stop(tokenizer: Any, start: int) -> Any:
    """Stop a completion once it has written a line of text (GPT-2 style prompts)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopAtNewline(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = has_finished_line(tokenizer.decode(input_ids[0, start:].tolist(), skip_special_tokens=True))
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_StopAtNewline()])
