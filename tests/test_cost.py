"""`rag cost`: cache-size formulas against real cache tensors, window cuts, outputs, refusals,
and the shipped architecture configs. Tiny random models only: seconds, not minutes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import folder_bytes

from rag.cost.archs import (
    ARCHS,
    DECODER_ONLY,
    ENCODER_DECODER,
    build_model,
    count_parameters,
    family,
    hf_config,
    resolve,
)
from rag.cost.cache import cross_cache_bytes, kv_cache_bytes
from rag.cost.feeds import CONCAT, FID, cached_tokens, make_feed, window_for
from rag.cost.measure import measure
from rag.cost.run import OUT_MARKER, CostSettings, claim_out, run_cost
from rag.errors import RagError

TINY_T5 = {
    "model_type": "t5",
    "is_encoder_decoder": True,
    "vocab_size": 120,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
TINY_GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 120,
    "n_embd": 32,
    "n_layer": 3,
    "n_head": 4,
    "n_positions": 96,
    "bos_token_id": 1,
    "eos_token_id": 1,
}
# gemma-3's layout in miniature: 5 sliding-window layers (window 16), then one full-attention layer
TINY_GEMMA = {
    "model_type": "gemma3_text",
    "vocab_size": 120,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "sliding_window": 16,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "tie_word_embeddings": True,
}

# Published sizes (tied embeddings counted once): the shipped configs must build these.
PUBLISHED = {
    "t5-small": 60e6,
    "flan-t5-small": 77e6,
    "flan-t5-base": 248e6,
    "gpt2": 124e6,
    "distilgpt2": 82e6,
    "smollm2": 135e6,
    "qwen2.5-0.5b": 494e6,
    "gemma3-270m": 268e6,
}


def _feed(config, mode, k, *, new_tokens, question=5, passage=10, arch="tiny"):
    fam = family(config)
    window = window_for(fam, hf_config(config), new_tokens)
    return make_feed(arch, fam, mode, k, window=window, question_tokens=question, passage_tokens=passage)


@pytest.mark.parametrize("mode, k", [(CONCAT, 3), (FID, 4)])
def test_cache_formulas_match_the_t5_cache_tensors(mode, k):
    model = build_model(TINY_T5)
    new_tokens = 5
    feed = _feed(TINY_T5, mode, k, new_tokens=new_tokens)
    sample = measure(model, feed, new_tokens)
    cfg = hf_config(TINY_T5)
    self_bytes = kv_cache_bytes(cfg, cached_tokens(ENCODER_DECODER, feed, new_tokens), encoder_decoder=True)
    cross = cross_cache_bytes(cfg, feed.input_tokens)
    assert (
        sample.kv_cache_bytes == self_bytes == 2 * 2 * 4 * 8 * new_tokens * 4
    )  # 2 x layers x heads x d_kv x tokens x fp32
    assert sample.cross_cache_bytes == cross == 2 * 2 * 4 * 8 * feed.input_tokens * 4
    assert feed.input_tokens == (5 + 10 * k if mode == CONCAT else k * (5 + 10))
    assert sample.new_tokens == new_tokens and 0 < sample.ttft_s <= sample.total_s
    assert sample.peak_rss_mb >= sample.rss_before_mb > 0


@pytest.mark.parametrize("config, k", [(TINY_GPT2, 2), (TINY_GEMMA, 1), (TINY_GEMMA, 3)])
def test_kv_formula_matches_decoder_only_cache_tensors(config, k):
    """GPT-2 (every layer full) and gemma-3's sliding layers, with prompts shorter and longer than the window."""
    model = build_model(config)
    new_tokens = 4
    feed = _feed(config, CONCAT, k, new_tokens=new_tokens, question=3, passage=6 if k == 1 else 12)
    sample = measure(model, feed, new_tokens, pad_token_id=0)
    positions = cached_tokens(DECODER_ONLY, feed, new_tokens)
    assert positions == feed.input_tokens + new_tokens - 1
    assert sample.kv_cache_bytes == kv_cache_bytes(hf_config(config), positions, encoder_decoder=False)
    assert sample.cross_cache_bytes == 0


def test_sliding_window_layers_hold_at_most_the_window():
    config = hf_config(TINY_GEMMA)  # transformers fills in layer_types: 5 sliding, then 1 full
    short = kv_cache_bytes(config, 10, encoder_decoder=False)
    long = kv_cache_bytes(config, 100, encoder_decoder=False)
    per_position = 2 * 1 * 16 * 4  # keys and values x kv heads x head size x fp32
    assert short == 6 * 10 * per_position
    assert long == (5 * 15 + 100) * per_position  # sliding layers keep window - 1 positions


def test_concatenated_inputs_are_cut_to_the_window_and_fid_inputs_are_not():
    new_tokens = 16
    for name, window in [("flan-t5-small", 512), ("gpt2", 1024 - new_tokens), ("qwen2.5-0.5b", 2048 - new_tokens)]:
        _, config = resolve(name)
        fam = family(config)
        assert window_for(fam, hf_config(config), new_tokens) == window
        for k in (1, 2, 5, 10, 20):
            feed = make_feed(name, fam, CONCAT, k, window=window, question_tokens=20, passage_tokens=200)
            assert feed.input_tokens == min(20 + 200 * k, window)
            assert feed.passage_tokens_given == min(200 * k, window - 20)
            assert feed.passage_tokens_asked == 200 * k
    fid = make_feed("flan-t5-small", ENCODER_DECODER, FID, 20, window=512, question_tokens=20, passage_tokens=200)
    assert fid.input_lengths == (220,) * 20 and fid.passage_tokens_given == fid.passage_tokens_asked == 4000
    long = make_feed("t5", ENCODER_DECODER, FID, 2, window=512, question_tokens=20, passage_tokens=600)
    assert long.input_lengths == (512, 512)  # each FiD input is cut only to its own window
    with pytest.raises(ValueError):
        make_feed("gpt2", DECODER_ONLY, FID, 2, window=1008, question_tokens=20, passage_tokens=200)


def test_run_writes_json_markdown_and_png_that_say_random_weights(tmp_path):
    from PIL import Image

    path = tmp_path / "tiny-t5.json"  # one worker process (its start is most of this test's time)
    path.write_text(json.dumps(TINY_T5), encoding="utf-8")
    out = tmp_path / "out"
    settings = CostSettings(
        archs=(str(path),), ks=(2, 1), repeats=2, new_tokens=3, threads=1, passage_tokens=10, question_tokens=4
    )
    result = run_cost(out, settings)

    assert (out / OUT_MARKER).is_file()
    summary = json.loads((out / "cost.json").read_text(encoding="utf-8"))
    assert "random weights" in summary["title"].lower() and "random weights" in summary["note"].lower()
    labels = {row["label"] for row in summary["rows"]}
    assert labels == {"tiny-t5 enc-dec concat", "tiny-t5 enc-dec FiD"}
    assert [row["k"] for row in summary["rows"]][:2] == [1, 2]
    for row in summary["rows"]:
        assert row["runs"] == 2 and row["cache_matches_formula"] is True
        assert 0 < row["ttft_ms"] <= row["total_ms"] and row["per_token_ms"] > 0 and row["peak_rss_mb"] > 0
    assert summary["archs"]["tiny-t5"]["parameters"] == count_parameters(build_model(TINY_T5, meta=True))
    assert len((out / "samples.jsonl").read_text(encoding="utf-8").splitlines()) == 2 * 2 * 2  # repeats x lines x ks
    markdown = (out / "cost.md").read_text(encoding="utf-8")
    assert "random weights" in markdown.splitlines()[0].lower()
    assert "| tiny-t5 | enc-dec FiD | 2 | 2 x 14 | 20/20 |" in markdown
    for name in ("latency.png", "memory.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and "random weights" in image.text["Title"].lower()
    assert {p.name for p in result.files} >= {"cost.json", "cost.md", "latency.png", "memory.png", OUT_MARKER}


def test_a_folder_with_other_files_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my own notes", encoding="utf-8")
    before = folder_bytes(out)
    with pytest.raises(RagError, match="notes.txt") as error:
        run_cost(out, CostSettings(archs=("t5-small",), ks=(1,), repeats=1))
    assert "\n" not in str(error.value) and str(out) in str(error.value)
    assert folder_bytes(out) == before
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(RagError, match="is a file"):
        claim_out(tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "x"


def test_a_folder_rag_cost_made_is_reused(tmp_path):
    out = tmp_path / "runs"
    claim_out(out)
    (out / "cost.md").write_text("old report", encoding="utf-8")
    claim_out(out)  # its own marker: no refusal
    assert json.loads((out / OUT_MARKER).read_text(encoding="utf-8"))["format"] == "rag-cost"


@pytest.mark.parametrize("name", list(ARCHS))
def test_shipped_configs_load_and_build_the_published_sizes(name):
    from transformers import PretrainedConfig

    label, config = resolve(name)
    assert label == name
    cfg = hf_config(config)
    assert isinstance(cfg, PretrainedConfig)
    assert (
        bool(cfg.is_encoder_decoder) == (ARCHS[name].family == ENCODER_DECODER) == (family(config) == ENCODER_DECODER)
    )
    model = build_model(config, meta=True)  # shapes only: nothing allocated
    assert model.config.is_encoder_decoder == cfg.is_encoder_decoder
    expected = ("ForConditionalGeneration",) if cfg.is_encoder_decoder else ("ForCausalLM", "LMHeadModel")
    assert type(model).__name__.endswith(expected)
    n = count_parameters(model)
    assert abs(n - PUBLISHED[name]) / PUBLISHED[name] < 0.03, f"{name}: {n:,} parameters"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--archs", "t5-tiny"], "unknown architecture 't5-tiny'"),
        (["--ks", "1,x"], "--ks must be whole numbers"),
        (["--ks", "0,5"], "--ks must be whole numbers of at least 1"),
        (["--new-tokens", "1"], "--new-tokens must be a whole number of at least 2"),
        (["--archs", "gpt2", "--modes", "fid"], "Fusion-in-Decoder needs an encoder-decoder"),
        (["--archs", "gpt2", "--question-tokens", "2000"], "leaves no room"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    from rag.cli import RagGroup
    from rag.cost import cost_command

    group = RagGroup("rag")
    group.add_command(cost_command, "cost")  # exactly how rag/cli/__init__.py registers it
    out = tmp_path / "out"
    result = CliRunner().invoke(group, ["cost", *args, "--out", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.exists()
