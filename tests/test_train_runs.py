"""Training runs that keep their progress: the learning curve at checkpoints of one run, damaged
checkpoints named in one line (never restarted over), and `--out` and the card's command.

Every model is tiny (two layers of 32) and trained for a few steps: the tests check what is on
disk and what is said, never quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import folder_bytes
from tiny_models import build_tiny_qa, tiny_towns

from rag.errors import RagError


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory) -> Path:
    return build_tiny_qa(tmp_path_factory.mktemp("models") / "tiny-qa")


@pytest.fixture(scope="module")
def towns(tmp_path_factory) -> Path:
    return tiny_towns(tmp_path_factory.mktemp("data") / "towns.json")


def _settings(tiny_qa, **kw):
    from rag.train.reader import TrainSettings

    return TrainSettings(
        base=str(tiny_qa), epochs=kw.pop("epochs", 3), batch_size=2, lr=1e-3, max_length=64, stride=16, **kw
    )


def _quiet(line: str) -> None:
    pass


# --- the learning curve ---------------------------------------------------------------------------


def test_curve_steps_are_where_that_many_questions_worth_of_windows_has_been_trained_on(tiny_qa):
    from rag.train.reader import curve_steps

    settings = _settings(tiny_qa, epochs=1)  # batches of 2
    # 100 windows of 50 questions (each with a no-answer passage): a question's worth is 2 windows
    points = curve_steps(100, 50, settings, [1, 5, 10, 25, 50, 51])
    assert points == {1: 1, 5: 5, 10: 10, 25: 25, 50: 50}  # step s has seen 2s windows = s questions' worth
    assert curve_steps(100, 50, _settings(tiny_qa, epochs=2), [60]) == {60: 60}  # the second epoch counts on
    assert curve_steps(100, 50, settings, [0, -3]) == {}


def test_a_curve_is_measured_at_checkpoints_and_a_resumed_run_neither_repeats_nor_changes_it(tiny_qa, towns, tmp_path):
    from safetensors.numpy import load_file

    from rag.train.data import load_examples
    from rag.train.reader import train

    examples = load_examples(towns)
    calls: list[int] = []

    def at_point(questions, clock, model, tokenizer):
        model.eval()  # as rag's evaluation does (TorchLogits)
        calls.append(questions)

    whole = train(examples, tmp_path / "whole", _settings(tiny_qa), threads=1, progress=False)
    out = tmp_path / "curve"
    first = train(
        examples,
        out,
        _settings(tiny_qa),
        threads=1,
        progress=False,
        checkpoint_seconds=0,
        stop_after=3,
        curve=[2, 6, 9],
        at_point=at_point,
        say=_quiet,
    )
    assert first.steps == 3
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3 and state["cpu_seconds"] > 0
    second = train(
        examples, out, _settings(tiny_qa), threads=1, progress=False, curve=[2, 6, 9], at_point=at_point, say=_quiet
    )
    assert second.steps == whole.steps
    # every point reached, across the kill (a run stopped right at a point offers it again on resume:
    # rag's own evaluation passes over a point curve.jsonl already holds, tested below)
    assert sorted(set(calls)) == [2, 6, 9] and calls.count(6) == 2 and len(calls) == 4
    # training goes on in train mode: evaluating at points changes no weight of the end model
    a, b = load_file(str(whole.folder / "model.safetensors")), load_file(str(second.folder / "model.safetensors"))
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)


def test_a_run_killed_during_a_curve_evaluation_measures_that_point_on_resume(tiny_qa, towns, tmp_path):
    from rag.train.data import load_examples
    from rag.train.reader import curve_steps, train, training_windows

    examples = load_examples(towns)
    settings = _settings(tiny_qa)
    from transformers import AutoTokenizer

    data = training_windows(AutoTokenizer.from_pretrained(str(tiny_qa)), examples, settings)
    points = curve_steps(len(data), len(examples), settings, [4])
    (step,) = points

    def killed(questions, clock, model, tokenizer):
        raise KeyboardInterrupt  # as if the process died mid-evaluation

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(examples, out, settings, threads=1, progress=False, curve=[4], at_point=killed, say=_quiet)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == step  # saved before evaluating
    seen = []
    train(
        examples,
        out,
        settings,
        threads=1,
        progress=False,
        stop_after=1,
        curve=[4],
        at_point=lambda q, clock, m, t: seen.append((q, clock["step"])),
        say=_quiet,
    )
    assert seen == [(4, step)]


def test_rag_train_reader_curve_writes_one_line_per_point_and_keeps_those_models(tiny_qa, towns, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import main

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "reader", "--data", str(towns), "--out", str(out), "--base", str(tiny_qa)]
    args += ["--held-in", "1", "--negatives", "1", "--epochs", "1", "--batch-size", "2", "--curve", "1,4"]
    result = CliRunner().invoke(main, [*args, "--no-onnx", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [line["questions"] for line in lines] == [1, 4]
    for line in lines:
        assert 0 <= line["gold_f1"] <= 1 and 0 <= line["retrieved_f1"] <= 1
        assert (out / line["model"] / "model.safetensors").is_file()
    assert 0 <= lines[0]["train_seconds"] <= lines[1]["train_seconds"] and lines[0]["step"] < lines[1]["step"]
    assert (out / "retrieval.json").is_file()
    record = json.loads((out / "model" / "rag-reader.json").read_text())
    assert str(tmp_path) not in record["command"] and "--out run" in record["command"]
    assert not Path(record["settings"]["data"]).is_absolute()  # a card names no path of this machine
    again = CliRunner().invoke(main, [*args, "--no-onnx", "--quiet"])  # finished: nothing is measured twice
    assert again.exit_code == 0, again.output
    assert len((out / "curve.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("value", ["5k", "0,100", "-3"])
def test_a_bad_curve_is_one_line_before_any_work(value, towns, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    result = CliRunner().invoke(
        main, ["train", "reader", "--data", str(towns), "--out", str(tmp_path / "o"), "--curve", value, "-q"]
    )
    assert result.exit_code == 2 and "--curve" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


# --- damaged checkpoints: one line naming the file, and never a restart that overwrites -------------


@pytest.mark.parametrize(
    "damage",
    [
        ("state.json", b""),
        ("state.json", b"{garbage"),
        ("state.json", b'{"step": "seven"}'),
        ("state.json", None),
        ("model.safetensors", "truncate"),
        ("config.json", b"{not json"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_nothing_is_overwritten(tiny_qa, towns, tmp_path, damage):
    from rag.train.data import load_examples
    from rag.train.reader import CHECKPOINT, train

    examples = load_examples(towns)
    out = tmp_path / "run"
    train(examples, out, _settings(tiny_qa), threads=1, progress=False, checkpoint_seconds=0, stop_after=4)
    name, content = damage
    target = out / CHECKPOINT / name
    if content is None:
        target.unlink()
    elif content == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    else:
        target.write_bytes(content)
    before = folder_bytes(out)
    with pytest.raises(RagError) as caught:
        train(examples, out, _settings(tiny_qa), threads=1, progress=False, say=_quiet)
    line = str(caught.value)
    assert "\n" not in line and str(out / CHECKPOINT) in line and "move" in line
    assert folder_bytes(out) == before  # the later checkpoint is kept: no restart from step 0 over it


# --- --out ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["train", "reader"], ["train", "reranker"], ["bench"], ["cost"]])
def test_out_naming_a_dangling_link_is_one_line_and_the_link_is_left(command, towns, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    args = {"bench": [*command, str(towns)], "cost": command}.get(
        command[0], [*command, "--data", str(towns), "--held-in", "1"]
    )
    result = CliRunner().invoke(main, [*args, "--out", str(link), "-q"])
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "symbolic link" in result.output and str(link) in result.output
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_training_says_its_new_head_in_one_line_not_transformers_load_table(tiny_qa, towns, tmp_path, capfd):
    from rag.train.data import load_examples
    from rag.train.reader import train

    lines: list[str] = []
    base = tmp_path / "base"
    import shutil

    shutil.copytree(tiny_qa, base)
    # a base without the span head, as the packaged MiniLM is: its weights are new
    from safetensors.torch import load_file, save_file

    weights = load_file(str(base / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("qa_outputs")}, str(base / "model.safetensors"))
    train(
        load_examples(towns),
        tmp_path / "run",
        _settings(base),
        threads=1,
        progress=False,
        stop_after=1,
        say=lines.append,
    )
    captured = capfd.readouterr()
    assert "MISSING" not in captured.err + captured.out and "LOAD REPORT" not in captured.err + captured.out
    assert any(line.startswith("new weights, initialised at random") and "qa_outputs" in line for line in lines)


def test_a_foreign_out_is_refused_before_any_retrieval(tiny_qa, towns, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import main
    from rag.train import run_reader

    def retrieval(*args, **kwargs):
        raise AssertionError("retrieval ran before --out was checked")

    monkeypatch.setattr(run_reader, "retrieval_for", retrieval)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("mine")
    args = ["train", "reader", "--data", str(towns), "--out", str(out), "--base", str(tiny_qa), "--held-in", "1", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "did not write" in result.output, result.output
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
