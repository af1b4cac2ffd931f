"""`--device`: where a training run computes. CI has no GPU: these check the choice and the errors
(the GPU path itself was run on a lent H200; BENCHMARKS.md)."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.train.device import autocast, device_of, resolve_device


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


def test_the_cpu_trains_in_float32_and_a_model_reports_where_it_is():
    import torch

    model = torch.nn.Linear(4, 4)
    assert device_of(model) == "cpu"
    with autocast("cpu"):
        out = model(torch.ones(1, 4))
    assert out.dtype == torch.float32  # no autocast on the CPU: the figures measured here stay fp32


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
