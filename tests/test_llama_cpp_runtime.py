"""llama.cpp as a generator runtime: where the per-CPU rule picks it, and that rag's generation
on it decodes exactly as on transformers (llama-cpp-python itself is an optional extra that CI
does not build: its session is played here by a tiny transformers model)."""

from __future__ import annotations

import pytest

from rag.cpu import Cpu, DtypeChoice
from rag.errors import RagError
from rag.generators.runtime import choose_runtime

AVX2 = Cpu("Test EPYC", frozenset({"avx2", "fma"}))
BF16 = Cpu("Test Xeon", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
FP32, BF16_DTYPE = DtypeChoice("float32", "auto"), DtypeChoice("bfloat16", "auto")


@pytest.fixture(autouse=True)
def no_runtime_env(monkeypatch):
    monkeypatch.delenv("RAG_RUNTIME", raising=False)


@pytest.mark.parametrize(
    "preset, gguf, cpu, dtype, installed, expected",
    [
        ("qwen2.5-1.5b", True, AVX2, FP32, True, "llama.cpp"),  # measured faster, same answers
        ("qwen2.5-1.5b", True, AVX2, FP32, False, "transformers"),  # not installed: never required
        ("qwen2.5-1.5b", True, BF16, BF16_DTYPE, True, "transformers"),  # native bf16: not measured there
        ("qwen2.5-1.5b", True, AVX2, BF16_DTYPE, True, "transformers"),  # the user asked for bfloat16
        ("qwen2.5-0.5b", True, AVX2, FP32, True, "transformers"),  # measured slower on RAG prompts
        ("gemma3-270m", True, AVX2, FP32, True, "transformers"),  # faster, but other answers
        (None, True, AVX2, FP32, True, "transformers"),  # a user's own .gguf: not measured
    ],
)
def test_auto_picks_llama_cpp_only_where_it_was_measured_faster_with_the_same_answers(
    preset, gguf, cpu, dtype, installed, expected
):
    choice = choose_runtime(preset, gguf, dtype, cpu=cpu, installed=installed)
    assert choice.runtime == expected
    if preset == "qwen2.5-1.5b" and cpu is AVX2 and dtype is FP32:
        assert ("pip install 'rag[llama-cpp]'" in choice.reason) == (not installed)


def test_rag_runtime_overrides_and_bad_values_are_one_line(monkeypatch):
    monkeypatch.setenv("RAG_RUNTIME", "transformers")
    assert choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=True).runtime == "transformers"
    monkeypatch.setenv("RAG_RUNTIME", "llama.cpp")
    assert choose_runtime("qwen2.5-0.5b", True, FP32, cpu=BF16, installed=True).runtime == "llama.cpp"
    for gguf, installed, words in [(True, False, "pip install 'rag[llama-cpp]'"), (False, True, "GGUF files only")]:
        with pytest.raises(RagError) as e:
            choose_runtime("flan-t5-small", gguf, FP32, cpu=AVX2, installed=installed)
        assert "$RAG_RUNTIME" in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
    monkeypatch.setenv("RAG_RUNTIME", "vllm")
    with pytest.raises(RagError, match=r"\$RAG_RUNTIME is 'vllm': use one of auto, transformers, llama.cpp"):
        choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=True)


class TorchSession:
    """llama.cpp's part played by the tiny model: the whole row through it at every step (no cache)."""

    def __init__(self, model) -> None:
        self.model, self.row, self.calls = model, [], 0

    def start(self, ids):
        self.row = list(ids)
        return self._last()

    def step(self, token):
        self.row.append(token)
        return self._last()

    def _last(self):
        import torch

        self.calls += 1
        with torch.inference_mode():
            return self.model(torch.tensor([self.row])).logits[0, -1].float().numpy()


def _twins(folder: str):
    from rag.generators import load_generator
    from rag.generators.llama_cpp import LlamaCppGenerator, LlamaCppModel

    hf = load_generator(folder, dtype="float32")
    session = TorchSession(hf.model)
    model = LlamaCppModel(session, hf.model.config, hf.model.generation_config)
    ll = LlamaCppGenerator(
        hf.name,
        model,
        hf.tokenizer,
        weights="gguf Q4_K_M",
        parameters=hf.num_parameters,
        context_window=hf.context_window,
        prompt_style=hf.prompt_style,
    )
    return hf, ll, session


@pytest.mark.parametrize("chat", [False, True])
def test_an_answer_decodes_token_for_token_as_on_transformers(tmp_path, chat):
    """Greedy, streamed, stopped at a newline (completion prompts) or an end token (chat), and
    extractive (rag's logits processor): the same tokens, text, span and stream on both."""
    from tiny_models import build_tiny_gpt2

    from rag.bench.resume import prompt_key
    from rag.documents import Passage

    hf, ll, session = _twins(str(build_tiny_gpt2(tmp_path / "m", chat=chat)))
    texts = ["The tower is in Paris.\nIt is tall.", "Bananas are yellow and sweet."]
    passages = [
        Passage(
            chunk_id=i,
            doc_path=f"d{i}.txt",
            text=t,
            start=0,
            end=len(t),
            first_line=1,
            last_line=2,
            score=1.0,
            rank=i + 1,
        )
        for i, t in enumerate(texts)
    ]
    for question in ["Where is the tower?", "What colour are bananas?"]:
        for extractive in (False, True):
            streams: dict[str, list[str]] = {"hf": [], "ll": []}
            a = hf.generate(question, passages, max_new_tokens=12, extractive=extractive, on_text=streams["hf"].append)
            b = ll.generate(question, passages, max_new_tokens=12, extractive=extractive, on_text=streams["ll"].append)
            assert (b.text, b.output_tokens, b.span) == (a.text, a.output_tokens, a.span)
            assert streams["ll"] == streams["hf"]
    assert session.calls > 0  # the answers really came through the session
    assert (b.runtime, b.dtype, a.runtime) == ("llama.cpp", "gguf Q4_K_M", "transformers")

    class Settings:
        max_new_tokens, temperature, seed = 12, 0.0, 0

    assert prompt_key(ll, Settings()) != prompt_key(hf, Settings())  # bench never resumes one as the other


def test_a_completion_stops_at_its_first_line_and_no_token_is_computed_twice_or_for_nothing(tmp_path):
    """A scripted session writes " Paris" then a newline: the answer is its first line, and the
    session reads the prompt once and each new token once, except the last (never read)."""
    import numpy as np
    from tiny_models import build_tiny_gpt2

    from rag.documents import Passage

    hf, ll, _ = _twins(str(build_tiny_gpt2(tmp_path / "m")))
    assert hf.prompt_style.stop_at_newline
    script = ll.tokenizer.encode(" Paris\nThe end of it all")
    n_vocab = hf.model.config.vocab_size

    class Scripted:
        def __init__(self) -> None:
            self.fed: list[list[int]] = []

        def start(self, ids):
            self.fed.append(list(ids))
            return self._next()

        def step(self, token):
            self.fed.append([token])
            return self._next()

        def _next(self):
            logits = np.zeros(n_vocab, dtype=np.float32)
            logits[script[len(self.fed) - 1]] = 10.0
            return logits

    ll.model.session = session = Scripted()
    text = "The tower is in Paris."
    passage = Passage(
        chunk_id=0, doc_path="d.txt", text=text, start=0, end=len(text), first_line=1, last_line=1, score=1.0, rank=1
    )
    answer = ll.generate("Where is the tower?", [passage], max_new_tokens=30)
    newline = next(i for i, t in enumerate(script) if "\n" in ll.tokenizer.decode([t]))
    assert answer.text == "Paris"
    assert answer.output_tokens == newline + 1  # up to the newline, which ends the line
    assert len(session.fed) == newline + 1 and all(len(f) == 1 for f in session.fed[1:])
    session.fed.clear()
    answer = ll.generate("Where is the tower?", [passage], max_new_tokens=1)
    assert answer.output_tokens == 1 and len(session.fed) == 1  # the prompt only: one token needs no step


def test_load_generator_loads_a_gguf_on_llama_cpp_when_chosen(tmp_path, monkeypatch):
    import rag.generators.llama_cpp as llama_cpp
    import rag.generators.runtime as runtime
    from rag.generators.loading import clear_loaded, load_generator

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    calls = []

    class Loaded:
        name = "model.gguf"

    def fake_load(path, name, **kw):
        calls.append((path, name))
        return Loaded()

    monkeypatch.setattr(llama_cpp, "load_llama_cpp", fake_load)
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: True)
    monkeypatch.setenv("RAG_RUNTIME", "llama.cpp")
    clear_loaded()
    try:
        generator = load_generator(str(gguf))
    finally:
        clear_loaded()
    assert calls == [(gguf, str(gguf))]
    assert generator.dtype_reason == "$RAG_RUNTIME llama.cpp"
    assert gguf.read_bytes() == b"GGUF"  # read, never converted or written


def test_rag_models_says_where_llama_cpp_would_answer_faster(monkeypatch):
    from click.testing import CliRunner

    import rag.cpu as cpu
    import rag.generators.runtime as runtime
    from rag.cli import main as cli

    monkeypatch.setattr(cpu, "this_cpu", lambda: AVX2)
    monkeypatch.setattr(runtime, "this_cpu", lambda: AVX2)
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: False)
    out = CliRunner().invoke(cli, ["models"]).output
    assert "qwen2.5-1.5b: auto: llama.cpp would run qwen2.5-1.5b faster on this CPU (pip install" in out
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: True)
    out = CliRunner().invoke(cli, ["models"]).output
    row = next(line for line in out.splitlines() if line.startswith("qwen2.5-1.5b "))
    assert "llama.cpp (the GGUF's own weights)" in row
    assert "transformers" in next(line for line in out.splitlines() if line.startswith("qwen2.5-0.5b "))
