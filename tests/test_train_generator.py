"""`rag train generator`: the encoder-decoder and decoder-only families trained from a MiniLM-shaped
encoder. Models are tiny (two layers of 32, random weights): the tests check masks, features,
decoding against a plain greedy loop, resumable training and what lands on disk, never quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import build_tiny_encoder, tiny_towns

from rag.errors import RagError


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("models") / "tiny-encoder")


@pytest.fixture(scope="module")
def towns(tmp_path_factory) -> Path:
    return tiny_towns(tmp_path_factory.mktemp("data") / "towns.json")


def _settings(encoder, family, **kw):
    from rag.train.generator import GenSettings

    attention = kw.pop("attention", "prefix" if family == "decoder-only" else "")
    kw = {"epochs": 3, "batch_size": 2, "lr": 1e-3, "new_lr": 1e-2, "max_input": 64, **kw}
    return GenSettings(family=family, attention=attention, base=str(encoder), **kw)


def _quiet(line: str) -> None:
    pass


def test_a_prefix_mask_reads_the_prompt_both_ways_and_the_answer_left_to_right():
    import torch

    from rag.generators.minilm import prefix_mask

    keep = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    allowed = prefix_mask(keep, [3, 2])[:, 0] == 0  # (batch, query, key)
    assert allowed[0, 0, 2] and allowed[0, 2, 0]  # prompt tokens see each other, forwards too
    assert not allowed[0, 0, 3] and not allowed[0, 2, 4]  # no prompt token sees the answer
    assert allowed[0, 4, 3] and not allowed[0, 3, 4]  # the answer reads left to right
    assert not allowed[0, :, 5].any()  # padding is seen by no one
    assert allowed[1, 1, 0] and allowed[1, 0, 1] and not allowed[1, 1, 2]  # row 2's prefix is 2 long


def test_features_are_the_prompt_the_model_answers_from_and_the_answer_then_sep(encoder, towns):
    from transformers import AutoTokenizer

    from rag.generators.prompts import QuestionPassagePrompt
    from rag.train.data import load_examples
    from rag.train.generator import features

    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    examples = load_examples(towns)
    data = features(tokenizer, examples, _settings(encoder, "encoder-decoder"))
    e, g = examples[0], data[0]
    assert g.prompt == tokenizer.encode(QuestionPassagePrompt()(e.question, [e.context]))
    assert g.prompt[0] == tokenizer.cls_token_id and tokenizer.sep_token_id in g.prompt[1:-1]
    assert g.target == tokenizer.encode(e.answer, add_special_tokens=False) + [tokenizer.sep_token_id]
    # a passage longer than the prompt's room is cut to a window that still holds the answer
    from dataclasses import replace

    filler = "The weather was mild and the streets were quiet that year. " * 40
    long = replace(e, context=filler + e.context + " " + filler, answer_start=len(filler) + e.answer_start)
    (cut,) = features(tokenizer, [long], _settings(encoder, "encoder-decoder", max_input=48))
    assert len(cut.prompt) <= 48
    assert tokenizer.decode(cut.prompt).count(e.answer.lower()) >= 1


def _greedy_prefix(model, prompt: list[int], steps: int, sep: int) -> list[int]:
    import torch

    from rag.generators.minilm import prefix_mask

    seq = list(prompt)
    for _ in range(steps):
        ids = torch.tensor([seq])
        mask = prefix_mask(torch.ones_like(ids), [len(prompt)])
        hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        seq.append(int(model.cls(hidden[:, -1]).argmax()))
        if seq[-1] == sep:
            break
    return seq[len(prompt) :]


def _greedy_seq2seq(model, prompt: list[int], steps: int, start: int, sep: int) -> list[int]:
    import torch

    from rag.generators.minilm import open_mask

    src = torch.tensor([prompt])
    states = model.bert(input_ids=src, attention_mask=open_mask(torch.ones_like(src))).last_hidden_state
    seq = [start]
    for _ in range(steps):
        hidden = model.bert(input_ids=torch.tensor([seq]), encoder_hidden_states=states).last_hidden_state
        seq.append(int(model.cls(hidden[:, -1]).argmax()))
        if seq[-1] == sep:
            break
    return seq[1:]


@pytest.mark.parametrize("family", ["encoder-decoder", "decoder-only"])
def test_rag_decodes_a_trained_family_as_a_plain_greedy_loop_over_its_masks_does(family, encoder, towns, tmp_path):
    import torch

    from rag.documents import Passage
    from rag.generators.minilm import model_class
    from rag.train.data import load_examples
    from rag.train.generator import train
    from rag.train.run_generator import as_generator

    examples = load_examples(towns)
    out = tmp_path / "run"
    train(examples, out, _settings(encoder, family), threads=1, progress=False, say=_quiet)
    model = model_class(family).from_pretrained(str(out / "model")).eval()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out / "model"))
    generator = as_generator("t", model, tokenizer, family)
    assert generator.family == family
    e = examples[0]
    passage = Passage(0, e.doc, e.context, 0, len(e.context), 1, 1, 0.0, 1)
    answer = generator.generate(e.question, [passage], max_new_tokens=6)
    prompt = generator.encode(generator.prompt_style(e.question, [e.context]))
    with torch.inference_mode():
        if family == "decoder-only":
            expected = _greedy_prefix(model, prompt, 6, tokenizer.sep_token_id)
        else:
            expected = _greedy_seq2seq(model, prompt, 6, tokenizer.cls_token_id, tokenizer.sep_token_id)
    assert expected and answer.output_tokens == len(expected)
    assert answer.text == tokenizer.decode(expected, skip_special_tokens=True).strip()
    assert answer.family == family and answer.passages[0].text == e.context
    if family == "encoder-decoder":  # Fusion-in-Decoder: each passage encoded with the question on its own
        fid = generator.generate(e.question, [passage, passage], max_new_tokens=6, fid=True)
        assert fid.fid and len(fid.passages) == 2


def test_cross_attention_starts_as_each_layers_self_attention_and_new_weights_learn_faster(encoder, towns, tmp_path):
    import torch

    from rag.generators.minilm import init_cross_attention, model_args, model_class
    from rag.train.generator import new_weight_names
    from rag.train.loop import param_groups

    model = model_class("encoder-decoder").from_pretrained(str(encoder), **model_args("encoder-decoder"))
    assert init_cross_attention(model) == 2
    layer = model.bert.encoder.layer[1]
    for name, value in layer.attention.state_dict().items():
        assert torch.equal(layer.crossattention.state_dict()[name], value), name
    new = new_weight_names(model, "encoder-decoder")
    assert any(".crossattention." in n for n in new) and not any(".attention.self." in n for n in new)
    groups = param_groups(model, 0.01, {n: 10.0 for n in new})
    scaled = {id(p) for g in groups if g.get("lr_scale") == 10.0 for p in g["params"]}
    named = dict(model.named_parameters())
    assert scaled == {id(named[n]) for n in new}
    assert sum(len(g["params"]) for g in groups) == len(named)


@pytest.mark.parametrize(
    "family,attention", [("encoder-decoder", ""), ("decoder-only", "prefix"), ("decoder-only", "causal")]
)
def test_each_family_trains_resumes_where_it_stopped_and_keeps_its_curve(family, attention, encoder, towns, tmp_path):
    from safetensors.numpy import load_file

    from rag.train.data import load_examples
    from rag.train.generator import train

    examples = load_examples(towns)
    settings = lambda: _settings(encoder, family, attention=attention)  # noqa: E731
    whole = train(examples, tmp_path / "whole", settings(), threads=1, progress=False, say=_quiet)
    out = tmp_path / "run"
    seen = []
    first = train(examples, out, settings(), threads=1, progress=False, checkpoint_seconds=0, stop_after=4, say=_quiet)
    assert first.steps == 4 and not (out / "model").exists()
    second = train(
        examples,
        out,
        settings(),
        threads=1,
        progress=False,
        curve=[12],
        at_point=lambda q, clock, m, t: seen.append((q, clock["step"])),
        say=_quiet,
    )
    assert second.steps == whole.steps == 15 and second.resumed_from == 4
    assert seen == [(12, 6)]  # 12 questions in batches of 2, one example each
    a, b = load_file(str(whole.folder / "model.safetensors")), load_file(str(second.folder / "model.safetensors"))
    import numpy as np

    for key in a:  # a kill and a resume train the same model as one call
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    log = [json.loads(line) for line in (tmp_path / "whole" / "train-log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 15


def test_a_generator_run_refuses_other_settings_in_one_line(encoder, towns, tmp_path):
    from rag.train.data import load_examples
    from rag.train.generator import train

    examples = load_examples(towns)
    out = tmp_path / "run"
    train(
        examples, out, _settings(encoder, "decoder-only"), threads=1, progress=False, checkpoint_seconds=0, stop_after=1
    )
    with pytest.raises(RagError, match="other settings .*attention") as caught:
        train(examples, out, _settings(encoder, "decoder-only", attention="causal"), threads=1, progress=False)
    assert "\n" not in str(caught.value)


def test_rag_train_generator_writes_a_model_its_card_and_held_in_figures(encoder, towns, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import main
    from rag.generators.minilm import MARKER

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "generator", "--family", "encoder-decoder", "--data", str(towns), "--out", str(out)]
    args += ["--base", str(encoder), "--held-in", "1", "--epochs", "1", "--batch-size", "2", "--curve", "2", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "held-in (3 questions): gold paragraph F1" in result.output
    record = json.loads((out / "model" / MARKER).read_text())
    assert record["family"] == "encoder-decoder" and record["questions_held_in"] == 3
    assert 0 <= record["metrics"]["held_in"]["gold_f1"] <= 1
    assert str(tmp_path) not in record["command"] and "--family encoder-decoder" in record["command"]
    assert not Path(record["settings"]["data"]).is_absolute()
    card = (out / "model" / "README.md").read_text()
    assert "encoder-decoder" in card and "cross-attention" in card and str(tmp_path) not in card
    (point,) = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert point["questions"] == 2 and (out / point["model"] / "model.safetensors").is_file()
    kept = json.loads((out / point["model"] / MARKER).read_text())  # a curve point loads and is labelled as a model
    assert kept["questions_trained"] == 2 and kept["metrics"]["held_in"]["gold_f1"] == point["gold_f1"]


@pytest.mark.parametrize("extra", [["--family", "sideways"], ["--family", "decoder-only", "--max-input", "4096"]])
def test_bad_generator_options_are_one_usage_line(extra, towns, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    result = CliRunner().invoke(
        main, ["train", "generator", "--data", str(towns), "--out", str(tmp_path / "o"), *extra]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def trained(encoder, towns, tmp_path_factory) -> dict[str, Path]:
    """A finished run of each family (no held-in articles), its folder as `rag train generator` leaves it."""
    from rag.train.run_generator import train_generator

    out = {}
    for family in ("encoder-decoder", "decoder-only"):
        folder = tmp_path_factory.mktemp("runs") / family
        run = train_generator(
            towns, folder, _settings(encoder, family), held_in=0, threads=1, progress=False, say=_quiet
        )
        assert run.finished
        out[family] = run.folder
    return out


@pytest.mark.parametrize("family", ["encoder-decoder", "decoder-only"])
def test_a_trained_generator_answers_through_rag_by_its_folder_and_from_int8_weights_alone(
    family, trained, towns, tmp_path
):
    import shutil

    import torch
    from safetensors.torch import load_file

    from rag.answerers import clear_loaded, load_answerer
    from rag.documents import Passage
    from rag.generators.int8_weights import WEIGHTS, load_int8
    from rag.train.data import load_examples

    folder = trained[family]
    full = load_file(str(folder / "model.safetensors"))
    stored = load_int8(folder / WEIGHTS)
    for name, value in stored.items():  # each weight within half a step of its row's scale
        step = value.abs().amax(dim=-1, keepdim=True) / 127 if value.dim() == 2 else torch.zeros(1)
        assert (full[name] - value).abs().le(step / 2 + 1e-7).all(), name
    shipped = tmp_path / "shipped"  # as it ships: int8 weights, config, tokenizer, record, card
    shutil.copytree(folder, shipped, ignore=shutil.ignore_patterns("model.safetensors"))
    assert (folder / WEIGHTS).stat().st_size < (folder / "model.safetensors").stat().st_size / 3
    clear_loaded()
    e = load_examples(towns)[0]
    passage = Passage(0, e.doc, e.context, 0, len(e.context), 1, 1, 0.0, 1)
    answers = []
    for where in (folder, shipped):
        generator = load_answerer(str(where))
        assert generator.family == family and generator.prompt_style.name == "question-passage"
        answers.append(generator.generate(e.question, [passage], max_new_tokens=4))
    assert all(a.family == family and a.output_tokens >= 1 for a in answers)
    loaded = dict(load_answerer(str(shipped)).model.named_parameters())  # every weight is a stored one, none drawn
    assert set(loaded) <= set(stored) | {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    for name, value in loaded.items():
        assert torch.equal(value.detach(), stored[name]) if name in stored else torch.isfinite(value).all(), name


def test_a_damaged_generator_record_is_one_line_naming_it(trained, tmp_path):
    import shutil

    from rag.answerers import clear_loaded, load_answerer
    from rag.answers import ModelNotAvailable

    folder = tmp_path / "g"
    shutil.copytree(trained["decoder-only"], folder)
    record = json.loads((folder / "rag-generator.json").read_text())
    record["family"] = "sideways"
    (folder / "rag-generator.json").write_text(json.dumps(record))
    clear_loaded()
    with pytest.raises(ModelNotAvailable) as caught:
        load_answerer(str(folder))
    assert "rag-generator.json is damaged" in str(caught.value) and "\n" not in str(caught.value)


def test_the_family_and_training_questions_of_a_trained_generator_show_in_bench_and_compare(trained, towns):
    from rag.answerers import clear_loaded, load_answerer
    from rag.bench.html import render_compare
    from rag.bench.report import generator_rows
    from rag.bench.system import model_info
    from rag.documents import Passage
    from rag.pipeline import Comparison
    from rag.train.data import load_examples

    clear_loaded()
    generator = load_answerer(str(trained["encoder-decoder"]))
    record = json.loads((trained["encoder-decoder"] / "rag-generator.json").read_text())
    assert model_info(generator)["questions_trained"] == record["questions_trained"] == 9
    e = load_examples(towns)[0]
    answer = generator.generate(e.question, [Passage(0, e.doc, e.context, 0, len(e.context), 1, 1, 0.0, 1)])
    assert answer.to_dict()["questions_trained"] == 9
    page = render_compare(e.question, answer.passages, [Comparison("mine", answer=answer)], "hybrid", {})
    assert "encoder-decoder (trained on 9 q)" in page
    summary = {"generators": [{"name": "mine", "status": "ok", "family": "encoder-decoder", "questions_trained": 9}]}
    summary["generators"][0].update(
        em=0.0, f1=0.0, answer_in_passages=1.0, prediction_supported=0.0, empty_rate=0.0, tokens_per_s=1.0,
        generation_ms={"p50": 1, "p95": 1}, prompt_tokens={"mean": 10}, passages_cut_mean=0.0,
    )  # fmt: skip
    assert generator_rows(summary)[0][1] == "encoder-decoder (trained on 9 q)"


def test_a_shipped_trained_generator_is_a_preset_rag_compare_includes_by_default(trained, tmp_path, monkeypatch):
    import shutil

    from rag.answerers import clear_loaded, load_answerer
    from rag.answers import ModelNotAvailable
    from rag.generators import loading, presets
    from rag.pipeline import default_comparison

    shutil.copytree(
        trained["encoder-decoder"], tmp_path / "minilm-encdec", ignore=shutil.ignore_patterns("model.safetensors")
    )
    preset = presets.Preset(
        "minilm-encdec", "encoder-decoder", 26_000_000, packaged="minilm-encdec", note="trained here"
    )
    monkeypatch.setattr(presets, "PACKAGED", tmp_path)
    monkeypatch.setitem(presets.PRESETS, preset.name, preset)
    clear_loaded()
    generator = load_answerer("minilm-encdec")
    assert generator.family == "encoder-decoder" and generator.questions_trained == 9
    (row,) = [r for r in loading.list_models() if r.name == "minilm-encdec"]
    assert row.available and "shipped with rag" in row.source
    assert "minilm-encdec" in default_comparison()
    (tmp_path / "minilm-encdec" / "rag-generator.json").unlink()  # a damaged install: one line, the way out
    clear_loaded()
    with pytest.raises(ModelNotAvailable, match="reinstall rag") as caught:
        load_answerer("minilm-encdec")
    assert "\n" not in str(caught.value)
    assert "minilm-encdec" not in default_comparison()


@pytest.mark.parametrize("family,attention", [("encoder-decoder", ""), ("decoder-only", "prefix")])
def test_the_prompt_is_read_both_ways_where_the_recipe_says_so(family, attention, encoder):
    """A decoder config (is_decoder) must not make the encoder pass or a prefix causal: the first
    token's state changes when a later prompt token does."""
    import torch

    from rag.generators.minilm import model_args, model_class, open_mask, prefix_mask

    model = model_class(family, attention or "prefix").from_pretrained(str(encoder), **model_args(family)).eval()
    a, b = torch.tensor([[101, 2054, 2003, 1996, 102]]), torch.tensor([[101, 2054, 2003, 3899, 102]])
    keep = torch.ones_like(a)
    mask = open_mask(keep) if family == "encoder-decoder" else prefix_mask(keep, [5])
    with torch.no_grad():
        first = [model.bert(input_ids=x, attention_mask=mask).last_hidden_state[0, 0] for x in (a, b)]
        causal = [model.bert(input_ids=x, attention_mask=keep).last_hidden_state[0, 0] for x in (a, b)]
    assert not torch.allclose(first[0], first[1])  # read both ways
    assert torch.allclose(causal[0], causal[1], atol=1e-6)  # and the plain decoder mask is causal


@pytest.mark.parametrize("family", ["encoder-decoder", "decoder-only"])
def test_batched_evaluation_answers_exactly_as_one_question_at_a_time(family, trained, towns):
    """benchmarks/device/eval_families.py batches questions (the encoder-decoder pads, the
    decoder-only groups equal lengths): each answer must be the one `generate` gives alone."""
    import sys
    from dataclasses import asdict

    from rag.answerers import clear_loaded, load_answerer
    from rag.documents import Passage
    from rag.train.data import load_examples

    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root / "benchmarks" / "device"), str(root / "benchmarks")]
    try:
        import eval_families
    finally:
        del sys.path[:2]

    examples = load_examples(towns)
    contexts = [e.context for e in examples]

    def passage(text: str, rank: int) -> dict:
        return asdict(Passage(rank, f"doc{rank}", text, 0, len(text), 1, 1, 0.0, rank))

    questions = [  # one to three passages each, of different lengths: rows that pad differently
        {
            "question": e.question,
            "gold": [passage(e.context, 1)],
            "hybrid": [passage(contexts[(i + j) % len(contexts)][: 40 + 25 * j], j + 1) for j in range(1 + i % 3)],
        }
        for i, e in enumerate(examples[:7])
    ]
    clear_loaded()
    generator = load_answerer(str(trained[family]))
    batched = eval_families.ANSWER[family]
    for mode in ("gold", "hybrid"):
        fid = mode == "hybrid" and family == "encoder-decoder"
        alone = [
            generator.generate(q["question"], eval_families.passages_of(q[mode]), max_new_tokens=64, fid=fid).text
            for q in questions
        ]
        assert batched(generator, questions, mode, batch=4) == alone


def test_ship_generator_copies_a_loadable_int8_folder_and_refuses_a_target_it_did_not_make(trained, tmp_path):
    import subprocess
    import sys

    from rag.answerers import clear_loaded, load_answerer

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ship_generator.py"
    source = tmp_path / "point"  # a curve point: float32 weights only, int8 written on shipping
    import shutil

    shutil.copytree(trained["encoder-decoder"], source, ignore=shutil.ignore_patterns("model-int8.safetensors"))

    def ship(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(script), str(source), "--name", "mine", "--target-root", str(tmp_path / "pkg")]
        return subprocess.run(command + list(args), capture_output=True, text=True)

    done = ship()
    assert done.returncode == 0, done.stderr
    shipped = tmp_path / "pkg" / "mine"
    assert (shipped / "model-int8.safetensors").is_file() and not (shipped / "model.safetensors").exists()
    assert not (source / "model-int8.safetensors").exists()  # the source folder is only read
    clear_loaded()
    assert load_answerer(str(shipped)).family == "encoder-decoder"
    (shipped / "notes.txt").write_text("the user's", encoding="utf-8")
    refused = ship()
    assert refused.returncode != 0 and "notes.txt" in refused.stderr
    assert (shipped / "notes.txt").read_text(encoding="utf-8") == "the user's"
