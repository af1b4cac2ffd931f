"""llama.cpp as a generator's runtime: the GGUF's own quantised weights, no float32 copy.

Chosen by `$RAG_RUNTIME=llama.cpp` (`rag.generators.runtime`: never by itself, since no preset
gave the very same answers faster). Everything but the forward pass stays rag's: the tokenizer, the prompt
template and its fitting, the stop rules, extractive decoding. `LlamaCppModel` stands in for the
transformers model inside `HFGenerator.generate`, doing the part of `model.generate` rag uses, so
an answer is computed the same way on both runtimes, token for token.

Needs the optional extra `rag[llama-cpp]` (llama-cpp-python, built from source on install).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.generators.causal import CausalGenerator


class LlamaSession:
    """A llama.cpp context fed token ids: the prompt, then one token at a time."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.n_vocab = llm.n_vocab()

    def start(self, ids: list[int]):
        """Forget the last answer, read the prompt; the next token's logits (NumPy, float32)."""
        self.llm.reset()
        self.llm.eval(ids)
        return self._last()

    def step(self, token: int):
        self.llm.eval([token])
        return self._last()

    def _last(self):
        import numpy as np

        # the last position's logits, as llama.cpp keeps them (no per-position copy: logits_all off)
        return np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,)).copy()


class LlamaCppModel:
    """The part of transformers' `generate()` that `HFGenerator.generate` calls, on a session.

    Greedy: the arg-max after rag's logits processors (extractive spans), as transformers does.
    Sampling: softmax at `temperature` (no top-k/top-p: rag sets none), seeded by torch; not the
    same draws as transformers' sampler. The output row is the prompt then the new tokens, the
    end token included, as transformers returns it.
    """

    def __init__(self, session: Any, config: Any, generation_config: Any) -> None:
        self.session = session
        self.config = config
        self.generation_config = generation_config

    def generate(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        *,
        max_new_tokens: int = 64,
        eos_token_id: list[int] | int | None = None,
        pad_token_id: int | None = None,
        do_sample: bool = False,
        temperature: float | None = None,
        logits_processor: Any = None,
        stopping_criteria: Any = None,
        streamer: Any = None,
        **ignored: Any,  # top_p/top_k (None: rag neutralises them), encoder_outputs (encoder-decoder only)
    ) -> Any:
        import torch

        ends = set(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]) - {None}
        row = input_ids[0].tolist()
        if streamer is not None:
            streamer.put(input_ids.cpu())  # transformers puts the prompt first (the streamer skips it)
        logits = self.session.start(row)
        for n in range(max_new_tokens):
            scores = torch.from_numpy(logits).float()[None]
            for processor in logits_processor or ():
                scores = processor(torch.tensor([row]), scores)
            if do_sample and temperature:
                token = int(torch.multinomial(torch.softmax(scores[0] / float(temperature), -1), 1))
            else:
                token = int(scores[0].argmax())
            row.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if token in ends:
                break
            if stopping_criteria and any(bool(c(torch.tensor([row]), scores).all()) for c in stopping_criteria):
                break
            if n + 1 < max_new_tokens:  # no forward pass for a token that will not be read
                logits = self.session.step(token)
        if streamer is not None:
            streamer.end()
        return torch.tensor([row])


class LlamaCppGenerator(CausalGenerator):
    """A decoder-only GGUF run by llama.cpp, behind the same Generator protocol."""

    runtime = "llama.cpp"

    def __init__(self, name: str, model: LlamaCppModel, tokenizer: Any, *, weights: str, parameters: int, **kw: Any):
        super().__init__(name, model, tokenizer, **kw)
        self.weights = weights  # what the weights compute in: the GGUF's quantisation, e.g. "gguf Q4_K_M"
        self.parameters = parameters

    @property
    def dtype(self) -> str:
        return self.weights

    @property
    def num_parameters(self) -> int:
        return self.parameters


def load_llama_cpp(gguf: Path, name: str, *, context_window: int | None, prompt: str | None, threads: int | None):
    """A LlamaCppGenerator for a GGUF file: llama.cpp for the weights, transformers for the
    tokenizer and config read from the same file (what rag's converted cache would hold)."""
    import torch
    from llama_cpp import Llama
    from transformers import GenerationConfig

    from rag.generators.causal import decoder_window
    from rag.generators.prompts import choose_prompt

    config, tokenizer = gguf_tokenizer(gguf)
    window = decoder_window(config, context_window)
    threads = threads or torch.get_num_threads()  # as many as torch would use (OMP_NUM_THREADS, cores)
    llm = Llama(
        model_path=str(gguf), n_ctx=window, n_threads=threads, n_threads_batch=threads, verbose=False, logits_all=False
    )
    model = LlamaCppModel(LlamaSession(llm), config, GenerationConfig.from_model_config(config))
    style = choose_prompt(CausalGenerator.family, tokenizer, prompt)
    return LlamaCppGenerator(
        name,
        model,
        tokenizer,
        weights=f"gguf {gguf_type(llm)}",
        parameters=n_params(llm),
        context_window=window,
        prompt_style=style,
        source=str(gguf),
    )


TOKENIZER_MARKER = "rag-gguf-tokenizer.json"  # written last: a folder with it is rag's and whole


def gguf_tokenizer(gguf: Path) -> tuple[Any, Any]:
    """(config, tokenizer) as transformers reads them from the GGUF's header (~25 s for
    qwen2.5-1.5b), from a folder rag saved: the float32 conversion's, where one exists, else a
    small one of their own under `$RAG_CACHE/gguf-tokenizer/`, written once (whole or not at all,
    `write_new_folder`). A damaged folder of our own (marked) is replaced; anything else found
    at that path is left as it is, and read around."""
    import json
    import shutil

    from transformers import AutoConfig, AutoTokenizer

    from rag.config import cache_dir
    from rag.generators.cache_folder import write_new_folder
    from rag.generators.presets import gguf_cache_folder, gguf_converted

    converted = gguf_converted(gguf)
    saved = converted or cache_dir() / "gguf-tokenizer" / gguf_cache_folder(gguf).name
    ours = converted is None and (saved / TOKENIZER_MARKER).is_file()
    if converted is not None or ours:
        try:
            return (
                AutoConfig.from_pretrained(saved, local_files_only=True),
                AutoTokenizer.from_pretrained(saved, local_files_only=True),
            )
        except Exception:  # damaged: read the GGUF again below
            if ours:
                shutil.rmtree(saved, ignore_errors=True)
    config, tokenizer = read_gguf_tokenizer(gguf)

    def write(tmp: Path) -> None:
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / TOKENIZER_MARKER).write_text(json.dumps({"gguf": str(gguf)}) + "\n", encoding="utf-8")

    try:
        write_new_folder(saved, write)
    except OSError:  # taken (another process, or not ours), or the cache is read-only: only the speed-up is lost
        pass
    return config, tokenizer


def read_gguf_tokenizer(gguf: Path) -> tuple[Any, Any]:
    """(config, tokenizer) read by transformers from the GGUF file itself (slow: see above)."""
    from transformers import AutoConfig, AutoTokenizer

    folder, file = str(gguf.parent), gguf.name
    return (
        AutoConfig.from_pretrained(folder, gguf_file=file, local_files_only=True),
        AutoTokenizer.from_pretrained(folder, gguf_file=file, local_files_only=True),
    )


def n_params(llm: Any) -> int:
    try:
        import llama_cpp

        return int(llama_cpp.llama_model_n_params(llm._model.model))
    except Exception:  # another llama-cpp-python's internals: the count is only shown
        return 0


def gguf_type(llm: Any) -> str:
    """The GGUF's quantisation as its header names it (general.file_type, read by llama.cpp), e.g.
    Q4_K_M. (gguf's own reader parses the whole vocabulary first: 19 s for qwen2.5-1.5b.)"""
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(llm.metadata["general.file_type"])).name.removeprefix("MOSTLY_")
    except Exception:  # no such key, an unknown code: still the GGUF's own weights
        return "quantised"
