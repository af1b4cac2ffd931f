"""The per-CPU dtype of generators: chosen from the CPU's flags, overridden by --dtype or
$RAG_DTYPE, recorded with every answer, and the bfloat16 path giving float32's greedy tokens."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.cpu import Cpu, choose_dtype, parse_cpuinfo
from rag.errors import RagError

EPYC_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 avx avx2 fma\n\nprocessor\t: 1\n"
XEON_AMX = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)


@pytest.fixture(autouse=True)
def no_dtype_from_the_environment(monkeypatch):
    import rag.cpu

    monkeypatch.setenv("RAG_DTYPE", "")
    monkeypatch.setattr(rag.cpu, "_PREFERRED", None)  # restored after each test, whatever --dtype set meanwhile


@pytest.mark.parametrize(
    "flags, expected, why",
    [
        ("avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile", "bfloat16", "amx_bf16"),
        ("avx2 avx512f avx512_vnni avx512_bf16", "bfloat16", "avx512_bf16"),
        ("avx2 avx512f avx512_vnni", "float32", "no native bfloat16"),
        ("avx2 fma", "float32", "no native bfloat16"),
        ("", "float32", "no native bfloat16"),
    ],
)
def test_auto_follows_the_cpus_flags(flags, expected, why):
    choice = choose_dtype("auto", Cpu("Some CPU", frozenset(flags.split())))
    assert choice.dtype == expected and why in choice.reason and "Some CPU" in choice.reason


def test_cpuinfo_is_read_for_the_model_and_flags():
    assert parse_cpuinfo(EPYC_AVX2) == Cpu("AMD EPYC 7B13", frozenset("fpu sse sse2 avx avx2 fma".split()))
    xeon = parse_cpuinfo(XEON_AMX)
    assert choose_dtype(None, xeon).dtype == "bfloat16" and "amx_bf16" in xeon.describe()
    assert (
        parse_cpuinfo("") == Cpu("unknown CPU", frozenset())
        and choose_dtype(None, parse_cpuinfo("")).dtype == "float32"
    )


def test_explicit_choices_override_and_say_so(monkeypatch):
    avx2 = parse_cpuinfo(EPYC_AVX2)
    assert choose_dtype("float32", parse_cpuinfo(XEON_AMX)).dtype == "float32"
    forced = choose_dtype("bfloat16", avx2)
    assert forced.dtype == "bfloat16" and "emulates" in forced.reason  # allowed, and said to be slow here
    monkeypatch.setenv("RAG_DTYPE", "BFloat16 ")
    assert choose_dtype(None, avx2).reason.startswith("$RAG_DTYPE bfloat16")
    monkeypatch.setenv("RAG_DTYPE", "fp16")
    with pytest.raises(RagError, match=r"\$RAG_DTYPE is 'fp16': use one of auto, float32, bfloat16"):
        choose_dtype(None, avx2)
    with pytest.raises(RagError, match="--dtype is 'half'"):
        choose_dtype("half", avx2)


def test_a_bad_dtype_on_the_command_line_is_one_line(tmp_path):
    for command in (["ask", "q?"], ["compare", "q?"], ["bench", str(tmp_path / "qa.jsonl")]):
        result = CliRunner().invoke(main, [*command, "--dtype", "bf16"])
        assert (
            result.exit_code == 1
            and result.output.strip() == "Error: --dtype is 'bf16': use one of auto, float32, bfloat16"
        )


def test_rag_models_names_the_cpu_and_the_choice():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0 and "This CPU:" in result.output and "generators compute in" in result.output


def test_bfloat16_gives_float32s_greedy_tokens_and_is_recorded(tiny_gpt2, tiny_t5):
    from rag.documents import Passage
    from rag.generators import load_generator

    passages = [Passage(1, "a.md", "BERT uses attention layers. The capital of France is Paris.", 0, 60, 1, 1, 1.0, 1)]
    for path in (tiny_gpt2, tiny_t5):
        fp32 = load_generator(path, dtype="float32")
        bf16 = load_generator(path, dtype="bfloat16")
        assert fp32 is not bf16 and fp32.dtype == "float32" and bf16.dtype == "bfloat16"
        a = fp32.generate("What is the capital of France?", passages, max_new_tokens=8)
        b = bf16.generate("What is the capital of France?", passages, max_new_tokens=8)
        assert a.text == b.text, (path, a.text, b.text)
        assert (a.dtype, b.dtype) == ("float32", "bfloat16") and b.dtype_reason.startswith("--dtype bfloat16")
        assert b.to_dict()["dtype"] == "bfloat16" and b.to_dict()["dtype_reason"] == b.dtype_reason


def test_ask_json_and_the_bench_summary_record_the_dtype(tmp_path, tiny_gpt2, corpus_index, embedder):
    result = CliRunner().invoke(
        main,
        [
            "ask",
            "What is BERT?",
            "-g",
            tiny_gpt2,
            "--index",
            str(corpus_index.path),
            "--dtype",
            "bfloat16",
            "--max-new-tokens",
            "4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["dtype"] == "bfloat16" and answer["dtype_reason"].startswith("--dtype bfloat16")

    from conftest import write_qa_set

    from rag.bench.runner import BenchConfig, run_bench

    qa = write_qa_set(
        tmp_path / "mini",
        {"a.md": "BERT is pre-trained with masked language modelling.\n"},
        [
            {
                "id": "q1",
                "question": "What is BERT pre-trained with?",
                "answer": "masked language modelling",
                "doc": "a.md",
            }
        ],
    )
    from rag.cpu import this_cpu
    from rag.generators import load_generator

    def in_bf16(name: str):
        return load_generator(name, dtype="bfloat16")

    run = run_bench(
        BenchConfig(
            dataset=qa,
            out=tmp_path / "out",
            embedder=embedder,
            max_new_tokens=4,
            generators=[tiny_gpt2],
            index_cache=tmp_path / "idx",
            load=in_bf16,
        )
    )
    entry = run.summary["generators"][0]
    assert entry["dtype"] == "bfloat16" and entry["dtype_reason"].startswith("--dtype bfloat16")
    assert run.summary["machine"]["cpu_flags"] == this_cpu().shown_flags


def test_the_larger_qwen_preset_is_opt_in_pinned_and_listed_with_its_memory():
    import tomllib

    from conftest import ROOT

    from rag.generators import list_models
    from rag.generators.presets import PRESETS

    preset = PRESETS["qwen2.5-1.5b"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    pinned = [p.split("==")[0] for p in extras["qwen-1-5b"]]
    assert pinned == preset.chunked.packages and all(p.endswith("==0.2.0") for p in extras["qwen-1-5b"])
    assert not any("qwen-1-5b" in d for d in extras["models"])  # `make` installs [dev,models] only
    assert len(preset.chunked.sha256) == 64 and preset.chunked.size == 1_117_320_768
    row = next(m for m in list_models() if m.name == "qwen2.5-1.5b")
    assert row.memory == "6.6 / 3.3 GiB" and row.licence == "Apache-2.0"


def test_the_larger_preset_is_the_default_only_where_bfloat16_is_native(monkeypatch):
    import rag.cpu
    import rag.generators.loading as loading
    import rag.readers.loading as readers
    from rag.answerers import default_answerer_name

    monkeypatch.setattr(loading, "preset_available", lambda preset: preset.name in ("qwen2.5-1.5b", "qwen2.5-0.5b"))
    monkeypatch.setattr(readers, "preset_available", lambda name: False)
    monkeypatch.setattr(rag.cpu, "this_cpu", lambda: parse_cpuinfo(XEON_AMX))
    assert default_answerer_name() == "qwen2.5-1.5b"
    monkeypatch.setattr(rag.cpu, "this_cpu", lambda: parse_cpuinfo(EPYC_AVX2))
    assert default_answerer_name() == "qwen2.5-0.5b"  # float32 here: three times slower, so not by default
    monkeypatch.setattr(readers, "preset_available", lambda name: True)
    assert default_answerer_name() == "minilm-reader"  # the reader before the 0.5B
    monkeypatch.setattr(rag.cpu, "this_cpu", lambda: parse_cpuinfo(XEON_AMX))
    assert default_answerer_name() == "qwen2.5-1.5b"  # opted in, and bfloat16 is native: quality first
