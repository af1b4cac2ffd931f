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
        base=str(tiny_qa),
        epochs=kw.pop("epochs", 3),
        batch_size=2,
        lr=kw.pop("lr", 1e-3),
        max_length=64,
        stride=16,
        **kw,
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


def test_a_curve_point_finished_for_shipping_says_so_on_its_card_and_names_no_path_of_this_machine(
    tiny_qa, towns, tmp_path, monkeypatch
):
    import os
    import subprocess
    import sys

    from click.testing import CliRunner

    from rag.cli import main

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "reader", "--data", str(towns), "--out", str(out), "--base", str(tiny_qa)]
    args += ["--held-in", "1", "--negatives", "1", "--epochs", "1", "--batch-size", "2", "--curve", "2"]
    assert CliRunner().invoke(main, [*args, "--no-onnx", "--quiet"]).exit_code == 0
    curve_model = folder_bytes(out / "curve" / "2q")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "finish_reader.py"), str(out), "2", "--threads", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "RAG_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    candidate = out / "candidate-2q"
    assert (candidate / "model-int8.onnx").is_file() and folder_bytes(out / "curve" / "2q") == curve_model
    record = json.loads((candidate / "rag-reader.json").read_text())
    assert str(tmp_path) not in record["command"] and "--out run " in record["command"]
    assert record["questions_trained"] == 2 and record["metrics"]["held_in_int8"]["questions"] > 0
    card = (candidate / "README.md").read_text()
    assert "A learning-curve point: the model after 2 questions' worth of windows" in card
    assert str(tmp_path) not in card


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


# --- a cooldown: finishing a long run early from its checkpoint -------------------------------------


def test_a_cooldown_schedule_starts_at_the_runs_rate_and_reaches_zero_at_its_finish(tiny_qa):
    from rag.train.checkpoints import lr_at
    from rag.train.loop import schedule

    settings = _settings(tiny_qa, epochs=1)
    total, rate = schedule(settings, 100)
    assert total == 100 and rate(50) == lr_at(50, 100, settings)
    settings.cooldown = {"from_step": 40, "questions": 60}
    total, rate = schedule(settings, 100, finish_step=60)
    assert total == 60
    assert rate(40) == pytest.approx(lr_at(40, 100, settings))  # no jump at the branch point
    rates = [rate(s) for s in range(40, 60)]
    assert all(a > b for a, b in zip(rates, rates[1:])) and rate(59) == pytest.approx(rate(40) / 20)
    for bad in (40, 30, 101):  # at or before the branch point, or past the run's own end
        with pytest.raises(RagError, match="--finish-at 60"):
            schedule(settings, 100, finish_step=bad)


def test_a_finished_run_names_the_questions_it_trained_on_and_a_cooldown_those_it_finished_at(tiny_qa):
    from rag.train.loop import questions_trained

    settings = _settings(tiny_qa)
    assert questions_trained(settings, 86786) == 86786
    settings.epochs = 0.25
    assert questions_trained(settings, 86786) == 21696
    settings.epochs = 2.0  # more epochs: the same distinct questions
    assert questions_trained(settings, 86786) == 86786
    settings.cooldown = {"from_step": 2011, "questions": 18500}
    assert questions_trained(settings, 86786) == 18500
    settings.cooldown = {"from_step": 2011, "questions": 90000}  # questions' worth of windows past the set
    assert questions_trained(settings, 86786) == 86786


def _reader_run(tiny_qa, towns, out, settings=None, **kw):
    from rag.train.run_reader import train_reader

    settings = settings or _settings(tiny_qa)
    kw = {"held_in": 0, "threads": 1, "progress": False, "evaluate_int8": False, "checkpoint_seconds": 0, **kw}
    return train_reader(towns, out, settings, say=_quiet, **kw)


def _cooldown(tiny_qa, towns, out, source, finish_at, **kw):
    return _reader_run(tiny_qa, towns, out, from_run=source, finish_at=finish_at, **kw)


def test_a_cooldown_continues_a_runs_checkpoint_in_its_own_folder_and_leaves_the_run_untouched(
    tiny_qa, towns, tmp_path
):
    source = tmp_path / "long"
    _reader_run(tiny_qa, towns, source, stop_after=4)
    before = folder_bytes(source)
    out = tmp_path / "cool"
    # killed in the middle of the cooldown, the long run meanwhile going on: the cooldown resumes from its own checkpoint
    first = _cooldown(tiny_qa, towns, out, source, 12, stop_after=1)
    assert not first.finished and folder_bytes(source) == before
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5 and state["settings"]["cooldown"] == {"from_step": 4, "questions": 12}
    _reader_run(tiny_qa, towns, source, stop_after=3)
    done = _cooldown(tiny_qa, towns, out, source, 12)
    assert done.finished and (out / "model" / "model.safetensors").is_file()
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["settings"]["cooldown"]["from_step"] == 4  # not the long run's later step 7
    assert state["step"] == done.metrics["training"]["steps"] < 15  # finished early: the run's epochs end at 15
    card = (out / "model" / "README.md").read_text()
    assert "Finished early (a cooldown): continued from step 4" in card
    record = json.loads((out / "model" / "rag-reader.json").read_text())
    assert record["settings"]["cooldown"] == {"from_step": 4, "questions": 12}


def test_a_cooldown_of_a_run_with_other_settings_or_none_is_one_line_and_writes_nothing_of_it(tiny_qa, towns, tmp_path):
    from rag.train.run_reader import train_reader

    source = tmp_path / "long"
    _reader_run(tiny_qa, towns, source, _settings(tiny_qa, lr=5e-4), stop_after=4)
    with pytest.raises(RagError, match="other settings .*lr") as caught:
        _cooldown(tiny_qa, towns, tmp_path / "cool", source, 12)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "cool" / "checkpoint").exists()  # nothing copied: the right command starts clean
    with pytest.raises(RagError, match="no training checkpoint there") as caught:
        _cooldown(tiny_qa, towns, tmp_path / "cool2", tmp_path / "nothing", 12)
    with pytest.raises(RagError, match="is --out itself"):
        train_reader(towns, source, _settings(tiny_qa, lr=5e-4), held_in=0, from_run=source, finish_at=12, say=_quiet)
    with pytest.raises(RagError, match="--finish-at 2"):  # before the branch point
        _reader_run(tiny_qa, towns, tmp_path / "cool3", _settings(tiny_qa, lr=5e-4), from_run=source, finish_at=2)


@pytest.mark.parametrize(
    "extra", [["--from-run", "x"], ["--finish-at", "5"], ["--from-run", "x", "--finish-at", "5", "--curve", "3"]]
)
def test_a_cooldown_given_by_halves_is_a_usage_line(extra, towns, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    args = ["train", "reader", "--data", str(towns), "--out", str(tmp_path / "o"), *extra, "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_copied_while_its_run_swaps_it_is_taken_again(tiny_qa, towns, tmp_path, monkeypatch):
    import shutil

    from rag.train import checkpoints

    source = tmp_path / "long"
    _reader_run(tiny_qa, towns, source, stop_after=2)
    real, calls = shutil.copytree, []

    def copy_mid_swap(src, dst, **kw):
        real(src, dst, **kw)
        calls.append(dst)
        if len(calls) == 1:  # the first copy caught a half-written model: same size, other bytes
            weights = Path(dst) / "model.safetensors"
            data = bytearray(weights.read_bytes())
            data[-8:] = b"\xff" * 8
            weights.write_bytes(bytes(data))

    monkeypatch.setattr(checkpoints.shutil, "copytree", copy_mid_swap)
    state = checkpoints.branch_checkpoint(source, tmp_path)
    assert len(calls) == 2 and state["step"] == 2
    assert checkpoints.checkpoint_state(tmp_path)["step"] == 2  # the copy in place is whole
    assert not (tmp_path / checkpoints.BRANCH_TMP).exists()
