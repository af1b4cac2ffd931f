"""One measurement: feed a model random token ids, generate a fixed number of tokens, time it.

It runs the calls rag's generators make (hf.py): `model.generate` on the ids under
`torch.inference_mode()`, and for Fusion-in-Decoder `fid_encode` first, inside the timed span.
A streamer stamps each token as generate emits it: time to first token is from the call to the
first generated token (the encoder pass(es) plus the first decoder step, or the prefill); the
time per generated token is the mean over the rest. Every model is made to produce exactly
`new_tokens` (min_new_tokens = max_new_tokens), so none stops early on a random end token.

Peak memory is the process's peak resident set (VmHWM) during the call, reset just before it:
the worker process holds only this one model, freed heap is handed back to the OS first
(malloc_trim) so earlier, larger calls do not hide this one's growth, and the figure includes
the weights and the Python/torch runtime. Python-level tracing (tracemalloc) cannot see torch's
allocations, which is why the kernel's counter is used.
"""

from __future__ import annotations

import ctypes
import gc
import time
from dataclasses import asdict, dataclass
from typing import Any

from rag.bench.system import PeakMemory
from rag.cost.archs import ENCODER_DECODER
from rag.cost.cache import measured_bytes
from rag.cost.feeds import FID, Feed


@dataclass
class Sample:
    """One run of one (architecture, mode, k)."""

    ttft_s: float
    per_token_s: float
    total_s: float
    new_tokens: int
    rss_before_mb: float
    peak_rss_mb: float
    kv_cache_bytes: int  # measured from the cache tensors generate returned
    cross_cache_bytes: int
    memory_method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Clock:
    """A generate() streamer that only records when each put happens (the first put is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: Any) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def random_inputs(feed: Feed, vocab_size: int, seed: int) -> list[list[int]]:
    """Random token ids of the feed's lengths (cost does not depend on which ids)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    low = min(10, vocab_size - 1)  # keep clear of the usual special ids; values do not matter
    return [torch.randint(low, vocab_size, (n,), generator=gen).tolist() for n in feed.input_lengths]


def measure(model: Any, feed: Feed, new_tokens: int, *, pad_token_id: int = 0, seed: int = 0) -> Sample:
    """Time and size one generation of `new_tokens` tokens for `feed` (see the module docstring)."""
    import torch

    if new_tokens < 2:
        raise ValueError("new_tokens must be at least 2 to time the tokens after the first")
    inputs = random_inputs(feed, int(model.config.get_text_config().vocab_size), seed)
    clock = _Clock()
    kwargs = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
        return_dict_in_generate=True,
        streamer=clock,
    )
    encoder_decoder = feed.family == ENCODER_DECODER
    if not encoder_decoder:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    gc.collect()
    _malloc_trim()  # so the peak below counts this call's pages, not freed ones of the last
    memory = PeakMemory()
    before_mb = memory.current_mb() or 0.0
    memory.reset()
    t0 = time.perf_counter()
    with torch.inference_mode():
        if feed.mode == FID:
            from rag.generators.fid import fid_encode

            states, mask = fid_encode(model, inputs, pad_token_id)
            output = model.generate(encoder_outputs=states, attention_mask=mask, **kwargs)
        else:
            ids = torch.tensor(inputs, dtype=torch.long)
            output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
    t1 = time.perf_counter()
    peak = memory.peak_mb()
    cache = getattr(output, "past_key_values", None)
    if cache is None:
        cache = getattr(output, "cache", None)
    self_bytes, cross_bytes = measured_bytes(cache)
    produced = len(clock.times) - 1
    if produced != new_tokens:
        raise RuntimeError(f"generate produced {produced} tokens, not the {new_tokens} asked for")
    first, last = clock.times[1], clock.times[-1]
    del output, cache
    return Sample(
        ttft_s=first - t0,
        per_token_s=(last - first) / (new_tokens - 1),
        total_s=t1 - t0,
        new_tokens=new_tokens,
        rss_before_mb=before_mb,
        peak_rss_mb=peak,
        kv_cache_bytes=self_bytes,
        cross_cache_bytes=cross_bytes,
        memory_method=memory.method,
    )


def _malloc_trim() -> None:
    """Return freed heap pages to the OS (glibc), so the next peak counts its own pages."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
