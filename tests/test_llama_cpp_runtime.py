"""llama.cpp as a generator runtime: the per-CPU rule (met by no preset, so auto stays on
transformers), $RAG_RUNTIME, and that rag's generation on llama.cpp decodes exactly as on transformers (llama-cpp-python itself is an optional extra that CI
does not build: its session is played here by a tiny transformers model)."""

from __future__ import annotations

import json
import shutil

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


@pytest.mark.parametrize("cpu, dtype", [(AVX2, FP32), (BF16, BF16_DTYPE), (AVX2, BF16_DTYPE)])
@pytest.mark.parametrize("preset", ["qwen2.5-1.5b", "qwen2.5-0.5b", "gemma3-270m", "smollm2", None])
@pytest.mark.parametrize("installed", [True, False])
def test_auto_is_transformers_because_no_preset_met_the_rule(preset, cpu, dtype, installed):
    """The rule (faster end to end with the same greedy answers) was met by no preset: auto never
    switches a user's answers to llama.cpp, installed or not, on any CPU."""
    assert choose_runtime(preset, True, dtype, cpu=cpu, installed=installed).runtime == "transformers"


def test_where_llama_cpp_was_measured_to_pay_the_choice_says_so_and_how_to_use_it():
    reason = choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=False).reason
    assert "1.18x faster" in reason and "2 of 20 answers changed" in reason
    assert "$RAG_RUNTIME=llama.cpp after pip install 'rag[llama-cpp]'" in reason
    assert "pip install" not in choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=True).reason
    assert choose_runtime("qwen2.5-1.5b", True, BF16_DTYPE, cpu=BF16, installed=True).reason == "auto"
    assert choose_runtime("qwen2.5-0.5b", True, FP32, cpu=AVX2, installed=True).reason == "auto"


def test_rag_runtime_overrides_and_bad_values_are_one_line(monkeypatch):
    monkeypatch.setenv("RAG_RUNTIME", "transformers")
    assert choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=True).runtime == "transformers"
    monkeypatch.setenv("RAG_RUNTIME", "llama.cpp")
    assert choose_runtime("qwen2.5-0.5b", True, FP32, cpu=BF16, installed=True).runtime == "llama.cpp"
    with pytest.raises(RagError) as e:
        choose_runtime("qwen2.5-1.5b", True, FP32, cpu=AVX2, installed=False)
    assert (
        "$RAG_RUNTIME" in str(e.value) and "pip install 'rag[llama-cpp]'" in str(e.value) and "\n" not in str(e.value)
    )
    other = choose_runtime("flan-t5-small", False, FP32, cpu=AVX2, installed=True)  # a preference: others still answer
    assert other.runtime == "transformers" and "GGUF files only" in other.reason
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


def test_the_tokenizer_cache_replaces_only_its_own_damaged_folder(tmp_path, monkeypatch):
    """Read once from the GGUF and cached; a damaged cached folder of rag's (marked) is read again
    and replaced; a folder at that path rag did not write is left byte for byte and read around."""
    from conftest import folder_bytes
    from tiny_models import build_tiny_gpt2
    from transformers import AutoConfig, AutoTokenizer

    import rag.generators.llama_cpp as llama_cpp
    from rag.generators.presets import gguf_cache_folder

    tiny = build_tiny_gpt2(tmp_path / "m")
    reads = []

    def read(gguf):
        reads.append(gguf)
        return AutoConfig.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(llama_cpp, "read_gguf_tokenizer", read)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    saved = tmp_path / "cache" / "gguf-tokenizer" / gguf_cache_folder(gguf).name

    for _ in range(2):
        _, tokenizer = llama_cpp.gguf_tokenizer(gguf)
        assert tokenizer.encode("hello") == AutoTokenizer.from_pretrained(tiny).encode("hello")
    assert len(reads) == 1 and (saved / llama_cpp.TOKENIZER_MARKER).is_file()

    (saved / "config.json").write_text("{damaged")
    llama_cpp.gguf_tokenizer(gguf)
    assert len(reads) == 2 and json.loads((saved / "config.json").read_text())  # read again, replaced

    shutil.rmtree(saved)
    saved.mkdir()
    (saved / "config.json").write_text("a user's own file")  # shaped like a tokenizer folder, not marked
    (saved / "tokenizer_config.json").write_text("another")
    before = folder_bytes(saved)
    for _ in range(2):
        llama_cpp.gguf_tokenizer(gguf)
    assert len(reads) == 4 and folder_bytes(saved) == before  # not rag's: never read, replaced or removed
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary folder left beside it


def test_rag_models_says_where_llama_cpp_was_measured_and_shows_it_when_chosen(monkeypatch):
    from click.testing import CliRunner

    import rag.cpu as cpu
    import rag.generators.runtime as runtime
    from rag.cli import main as cli

    monkeypatch.setattr(cpu, "this_cpu", lambda: AVX2)
    monkeypatch.setattr(runtime, "this_cpu", lambda: AVX2)
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: False)
    out = CliRunner().invoke(cli, ["models"]).output
    assert "  qwen2.5-1.5b: llama.cpp answered it 1.18x faster" in out
    row = next(line for line in out.splitlines() if line.startswith("qwen2.5-1.5b "))
    assert "transformers float32" in row
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: True)
    monkeypatch.setenv("RAG_RUNTIME", "llama.cpp")
    out = CliRunner().invoke(cli, ["models"]).output
    row = next(line for line in out.splitlines() if line.startswith("qwen2.5-1.5b "))
    assert "llama.cpp (the GGUF's own weights)" in row
    monkeypatch.setattr(runtime, "llama_cpp_installed", lambda: False)
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0 and "llama.cpp, not installed" in result.output
    assert "not installed: pip install 'rag[llama-cpp]'" in result.output
    monkeypatch.setenv("RAG_RUNTIME", "fast")
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code != 0 and "$RAG_RUNTIME is 'fast'" in result.output
