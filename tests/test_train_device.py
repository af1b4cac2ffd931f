"""`--device`: where a training run computes. CI has no GPU: these check the choice and the errors
(the GPU path itself was run on a lent H200; BENCHMARKS.md)."""

from __future__ import annotations

import pytest

from rag.cpu import Cpu
from rag.errors import RagError
from rag.train.device import autocast, device_of, resolve_device, resolve_precision


def test_auto_picks_the_cpu_where_torch_sees_no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device(None) == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_auto_picks_the_gpu_where_torch_sees_one(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"


def test_a_gpu_asked_for_and_absent_is_one_line_naming_the_way_out(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RagError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(RagError, match="--device tpu: give one of auto, cpu, cuda"):
        resolve_device("tpu")


ZEN1 = Cpu("AMD EPYC 7551", frozenset({"avx2", "fma"}))
ZEN4 = Cpu("AMD EPYC 9R14", frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}))
SAPPHIRE = Cpu("Intel Xeon Platinum 8488C", frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile"}))


def test_precision_is_chosen_per_cpu_and_a_choice_given_wins(monkeypatch):
    monkeypatch.delenv("RAG_TRAIN_PRECISION", raising=False)
    assert resolve_precision("cpu", "auto", ZEN1)[0] == "fp32"  # bf16 would be emulated: slower
    assert resolve_precision("cpu", "auto", ZEN4)[0] == "bf16"
    assert resolve_precision("cpu", "auto", SAPPHIRE)[0] == "bf16"
    assert "avx512_bf16" in resolve_precision("cpu", "auto", ZEN4)[1]  # the reason names the flag
    assert resolve_precision("cpu", "fp32", ZEN4) == ("fp32", "--precision fp32")
    assert resolve_precision("cpu", "bf16", ZEN1)[0] == "bf16"
    assert resolve_precision("cuda", "auto", ZEN1)[0] == "bf16"
    with pytest.raises(RagError, match="--precision fp16: give one of auto, fp32, bf16"):
        resolve_precision("cpu", "fp16", ZEN1)
    monkeypatch.setenv("RAG_TRAIN_PRECISION", "fp32")
    assert resolve_precision("cpu", None, ZEN4) == ("fp32", "$RAG_TRAIN_PRECISION fp32")
    assert resolve_precision("cpu", "bf16", ZEN4)[0] == "bf16"  # a choice given beats the variable


def test_autocast_follows_the_precision_on_the_cpu_and_a_model_reports_where_it_is():
    import torch

    model = torch.nn.Linear(4, 4)
    assert device_of(model) == "cpu"
    with autocast("cpu", "fp32"):
        assert model(torch.ones(1, 4)).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert model(torch.ones(1, 4)).dtype == torch.bfloat16
    assert model.weight.dtype == torch.float32  # autocast casts the products, not the weights


def test_a_bf16_run_records_its_precision_and_keeps_float32_weights(tmp_path, monkeypatch):
    import json

    import torch
    from click.testing import CliRunner
    from safetensors.torch import load_file
    from tiny_models import build_tiny_encoder, tiny_towns

    from rag.cli import main
    from rag.train.run_reader import run_precision

    monkeypatch.setattr("rag.train.device._PREFERRED_PRECISION", None)  # --precision lives for the process
    base = build_tiny_encoder(tmp_path / "tiny")
    data = tiny_towns(tmp_path / "towns.json")
    out = tmp_path / "run"
    args = ["train", "reader", "--data", str(data), "--out", str(out), "--base", str(base), "--held-in", "0"]
    args += ["--epochs", "1", "--batch-size", "4", "--no-onnx", "--threads", "1", "--precision", "bf16"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "training in bf16 autocast" in result.output
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert log and {r["precision"] for r in log} == {"bf16"}
    assert run_precision(out) == "bf16"
    weights = load_file(str(out / "model" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}  # the same file whatever trained it
    card = json.loads((out / "model" / "rag-reader.json").read_text())
    assert card["metrics"]["training"]["precision"] == "bf16"


def test_rag_train_refuses_a_missing_gpu_before_touching_out(tmp_path, monkeypatch):
    import torch
    from click.testing import CliRunner

    from rag.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "q?", "answer": "a", "context": "a b", "title": "t"}\n', encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "reader", "--data", str(data), "--out", str(out), "--device", "cuda"])
    assert result.exit_code != 0
    assert "no CUDA GPU" in result.output
    assert not out.exists()
