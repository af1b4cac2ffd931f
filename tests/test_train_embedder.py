"""`rag train embedder`: a bi-encoder tuned on question -> passage pairs with rag's loop. The
model is tiny (two layers of 32, random weights, MiniLM's tokenizer and sentence-transformers
modules): the tests check the loss, resuming, and that the result is an embedder rag indexes with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import build_tiny_encoder, tiny_towns


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory) -> Path:
    """A tiny sentence-transformers folder: transformer, mean pooling, L2 normalisation."""
    folder = build_tiny_encoder(tmp_path_factory.mktemp("models") / "tiny-st")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    )
    return folder


@pytest.fixture(scope="module")
def towns(tmp_path_factory) -> Path:
    return tiny_towns(tmp_path_factory.mktemp("data") / "towns.json", stadium=True)


def _settings(tiny_st, **kw):
    from rag.train.embedder import EmbedSettings

    return EmbedSettings(base=str(tiny_st), **{"epochs": 2, "batch_size": 4, "lr": 1e-3, **kw})


def test_the_ranking_loss_prefers_each_questions_own_passage_over_the_batchs_others():
    import torch

    from rag.train.embedder import ranking_loss

    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    passages = torch.cat([q, torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)])  # positives, then negatives
    right = ranking_loss(q, passages, range(4))
    wrong = ranking_loss(q, passages, [1, 2, 3, 0])
    assert right < 0.01 < wrong  # scaled by 20: its own passage (cosine 1) wins by far


def test_training_resumes_and_leaves_a_sentence_transformers_folder_that_computes_what_trained(
    tiny_st, towns, tmp_path
):
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.train.data import load_examples
    from rag.train.embedder import mean_pooled, train
    from rag.train.reranker import Group

    examples = load_examples(towns)
    contexts = sorted({e.context for e in examples})
    groups = [Group(e.question, [e.context, next(c for c in contexts if c != e.context)]) for e in examples]
    out = tmp_path / "run"
    first = train(groups, out, _settings(tiny_st), threads=1, progress=False, checkpoint_seconds=0, stop_after=2)
    assert first.steps == 2 and not (out / "model").exists()
    done = train(groups, out, _settings(tiny_st), threads=1, progress=False)
    assert done.steps == 6  # 12 questions, batches of 4, 2 epochs: resumed at step 2
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert log and log[-1]["step"] == 6
    model = SentenceTransformer(str(done.folder))
    vectors = model.encode([e.question for e in examples[:3]], normalize_embeddings=False)
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # its Normalize module came along
    from transformers import AutoModel, AutoTokenizer

    body, tok = AutoModel.from_pretrained(str(done.folder)), AutoTokenizer.from_pretrained(str(done.folder))
    batch = tok([e.question for e in examples[:3]], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = mean_pooled(body.eval(), batch["input_ids"], batch["attention_mask"]).numpy()
    np.testing.assert_allclose(vectors, ours, atol=1e-5)  # what trained is what sentence-transformers computes


def test_rag_train_embedder_measures_held_in_recall_and_rag_indexes_with_the_result(
    tiny_st, towns, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from rag.cli import main
    from rag.train.run_embedder import MARKER

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "embedder", "--data", str(towns), "--out", str(out), "--base", str(tiny_st)]
    args += ["--held-in", "1", "--batch-size", "4", "--epochs", "1", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "held-in (4 questions" in result.output and "recall@5" in result.output
    record = json.loads((out / "model" / MARKER).read_text())
    for key in ("held_in", "held_in_base"):
        assert 0 <= record["metrics"][key]["recall@1"] <= record["metrics"][key]["recall@5"] <= 1
    assert str(tmp_path) not in record["command"] and not Path(record["settings"]["data"]).is_absolute()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paris.txt").write_text("Paris has four bridges and a river called the Seine.")
    (docs / "lyon.txt").write_text("The museum of Lyon opened in 1901 and holds eleven paintings.")
    index = tmp_path / "index"
    built = CliRunner().invoke(main, ["index", str(docs), "--index", str(index), "--embedder", str(out / "model")])
    assert built.exit_code == 0, built.output
    info = CliRunner().invoke(main, ["info", "--index", str(index)])
    assert str(out / "model") in info.output  # the index records the tuned embedder it was built with
    found = CliRunner().invoke(main, ["search", "museum paintings", "--index", str(index), "-k", "1"])
    assert found.exit_code == 0 and ("lyon.txt" in found.output or "paris.txt" in found.output), found.output


@pytest.mark.parametrize("extra", [["--batch-size", "1"], ["--group", "1"]])
def test_bad_embedder_options_are_one_usage_line(extra, towns, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    result = CliRunner().invoke(main, ["train", "embedder", "--data", str(towns), "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_curve_keeps_each_point_as_an_embedder_and_a_resumed_run_does_not_measure_it_again(
    tiny_st, towns, tmp_path, monkeypatch
):
    from click.testing import CliRunner
    from sentence_transformers import SentenceTransformer

    from rag.cli import main

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "embedder", "--data", str(towns), "--out", str(out), "--base", str(tiny_st)]
    args += ["--held-in", "1", "--batch-size", "2", "--epochs", "1", "--curve", "2,4,1000", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [p["questions"] for p in lines] == [2, 4]  # 1000 is past the run's end: no point
    assert [p["step"] for p in lines] == [1, 2]
    for point in lines:
        assert point["base"] == lines[0]["base"]  # the base model measured once, beside each point
        assert 0 <= point["tuned"]["recall@1"] <= point["tuned"]["recall@5"] <= 1
        model = SentenceTransformer(str(out / point["model"]))  # each point is an embedder rag can index with
        assert model.encode(["a bridge"]).shape == (1, 32)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert len((out / "curve.jsonl").read_text().splitlines()) == 2  # finished run: nothing measured twice


def test_mined_groups_are_kept_in_the_run_and_read_back_instead_of_mined_again(tmp_path):
    from rag.train.mined import GROUPS, cached_groups
    from rag.train.reranker import Group

    calls = []

    def mine(tag="a"):
        calls.append(tag)
        return [Group("where is the bridge?", ["the bridge is in Paris", f"a museum {tag}"])]

    lines: list[str] = []
    key = {"data_sha256": "x", "held_in": ["Botany"], "group": 2, "seed": 0, "questions": 1}
    first = cached_groups(tmp_path, key, mine, lines.append)
    again = cached_groups(tmp_path, key, lambda: mine("b"), lines.append)
    assert calls == ["a"] and again == first  # read back: the same negatives, whatever the index says now
    assert any("read from" in line for line in lines)
    other = cached_groups(tmp_path, {**key, "seed": 1}, lambda: mine("c"), lines.append)
    assert calls == ["a", "c"] and other[0].passages[1] == "a museum c"  # other settings: mined anew
    (tmp_path / GROUPS).write_text('{"key": ', encoding="utf-8")  # cut by a kill
    cached_groups(tmp_path, key, lambda: mine("d"), lines.append)
    assert calls[-1] == "d" and any("cannot be read" in line for line in lines)
    assert json.loads((tmp_path / GROUPS).read_text())["groups"][0][1][1] == "a museum d"
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, then moved into place
