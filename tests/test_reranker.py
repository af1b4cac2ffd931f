"""The cross-encoder reranker: fusion, mined negatives, training and resuming a tiny model,
ONNX against torch, and the CLI (--reranker, one-line errors, defaults from one place)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_models import build_tiny_cross_encoder

from rag import config
from rag.cli import main
from rag.documents import Passage
from rag.errors import RagError
from rag.rerankers.base import RerankSettings
from rag.rerankers.fusion import fused_order, rerank_order
from rag.train.data import Example
from rag.train.reranker import Group, mine_groups

# --- fusion: pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0, 4.0, math.inf])
@pytest.mark.parametrize("seed", range(5))
def test_rerank_order_is_a_permutation_and_deterministic(weight, seed):
    rng = random.Random(seed)
    total = rng.randint(1, 30)
    scores = [rng.choice([rng.random(), 0.5]) for _ in range(rng.randint(1, total))]  # ties included
    order = rerank_order(scores, total, weight, 1.0)
    assert sorted(order) == list(range(total))  # nothing added, nothing lost
    assert order == rerank_order(list(scores), total, weight, 1.0)
    assert order[len(scores) :] == list(range(len(scores), total))  # unread candidates keep their order


def test_fusion_extremes():
    scores = [0.1, 0.9, 0.5]
    assert fused_order(scores, math.inf, 1.0) == [1, 2, 0]  # the reranker's order alone
    assert fused_order(scores, 0.0, 1.0) == [0, 1, 2]  # the retriever's order alone
    # Equal weights, c = 1: 0 -> 1/2 + 1/4, 1 -> 1/3 + 1/2, 2 -> 1/4 + 1/3.
    assert fused_order(scores, 1.0, 1.0) == [1, 0, 2]
    assert fused_order([0.3, 0.3], math.inf, 1.0) == [0, 1]  # a tie keeps the retriever's order


def test_rerank_settings_refuse_bad_values():
    for bad in ({"pool": 0}, {"weight": -1.0}, {"weight": math.nan}, {"c": -1.0}):
        with pytest.raises(RagError):
            RerankSettings(model="m", **bad)
    assert RerankSettings(model="m", weight=math.inf).to_dict()["weight"] == "inf"  # JSON has no infinity


def test_a_retriever_comes_back_from_its_dict():
    from rag.retrieve import Retriever

    for retriever in (
        Retriever(),
        Retriever(kind="dense", mmr=0.7),
        Retriever(rerank=RerankSettings(model="m", pool=7, weight=math.inf, c=3.0)),
        Retriever(kind="bm25", rerank=RerankSettings(model="m")),
    ):
        recorded = json.loads(json.dumps(retriever.to_dict()))  # as summary.json holds it
        assert Retriever.from_dict(recorded) == retriever


def _passage(i: int, doc: str, text: str) -> Passage:
    return Passage(i, doc, text, 0, len(text), 1, 1, 1.0 / (i + 1), i + 1)


# --- mining hard negatives ------------------------------------------------------------------------


def test_mined_negatives_never_hold_the_answer_nor_come_from_gold_or_held_in():
    e = Example(
        "q1",
        "Who built the tower?",
        "Gustave Eiffel built the tower.",
        0,
        "Gustave Eiffel",
        ["Gustave Eiffel", "Eiffel"],
        "Paris",
        "Paris/0",
    )
    hybrid = {
        "q1": [
            _passage(0, "Paris/0", "Gustave Eiffel built the tower."),
            _passage(1, "Paris/1", "The tower was designed by Eiffel's firm."),  # holds an answer
            _passage(2, "Paris/2", "The tower is 330 metres tall."),
            _passage(3, "Rome/0", "Rome has no tower of that kind."),  # a held-in article
            _passage(4, "Lyon/0", "Lyon's tower is a TV mast."),
        ]
    }
    dense = {
        "q1": [
            _passage(5, "Lyon/1", "Towers are built by engineers."),
            _passage(2, "Paris/2", "The tower is 330 metres tall."),
            _passage(6, "Paris/0", "A second chunk of the gold paragraph."),
        ]
    }
    for seed in range(10):
        (group,) = mine_groups([e], [hybrid, dense], 3, held_in=["Rome"], seed=seed)
        assert group.passages[0] == "Gustave Eiffel built the tower."  # the gold chunk with the answer
        negatives = group.passages[1:]
        assert len(negatives) == 2 and len(set(negatives)) == 2
        assert set(negatives) <= {
            "The tower is 330 metres tall.",
            "Lyon's tower is a TV mast.",
            "Towers are built by engineers.",
        }
    assert mine_groups([e], [hybrid, dense], 5, held_in=["Rome"]) == []  # too few negatives: left out


def test_pairs_are_padded_with_segment_ids_after_the_first_separator():
    from transformers import AutoTokenizer

    from rag.models.batch import pad_rows
    from rag.train.reader import base_folder
    from rag.train.reranker import encode_groups

    tokenizer = AutoTokenizer.from_pretrained(base_folder("all-MiniLM-L6-v2"))
    (group,) = encode_groups(tokenizer, [Group("where?", ["in the room by the door", "here"])], max_length=32)
    arrays = pad_rows(group["input_ids"], group["token_type_ids"], pad_id=0)
    sep = tokenizer.sep_token_id
    for row, mask, types in zip(
        arrays["input_ids"].tolist(), arrays["attention_mask"].tolist(), arrays["token_type_ids"].tolist()
    ):
        n = sum(mask)
        assert mask == [1] * n + [0] * (len(row) - n) and row[n:] == [0] * (len(row) - n)
        first = row.index(sep) + 1  # [CLS] question [SEP] | passage [SEP]
        assert types == [0] * first + [1] * (n - first) + [0] * (len(row) - n)
    assert arrays["input_ids"].shape[0] == 2 and sum(arrays["attention_mask"][1]) < sum(arrays["attention_mask"][0])


# --- a tiny cross-encoder, trained here -----------------------------------------------------------


GROUPS = [
    Group(f"where is item {i}?", [f"item {i} is in room {i}.", f"item {i + 1} is elsewhere.", "nothing to see here."])
    for i in range(12)
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce") / "tiny")


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A few steps of training, stopped, then resumed to the end; returns (run folder, losses)."""
    from rag.outdir import claim_out
    from rag.train.reranker import RerankSettings as Train
    from rag.train.reranker import train

    out = tmp_path_factory.mktemp("ce-run") / "run"
    claim_out(out, "train")
    settings = Train(base=str(tiny), epochs=2, lr=1e-3, batch_size=4, group=3, max_length=32)
    first = train(GROUPS, out, settings, progress=False, stop_after=2, checkpoint_seconds=0)
    assert first.steps == 2 and not (out / "model").exists()
    second = train(GROUPS, out, settings, progress=False)
    return out, first, second


def test_training_resumes_and_writes_a_loadable_cross_encoder(trained):
    out, first, second = trained
    assert second.resumed_from == 2 and second.steps == 6  # 12 groups / 4 a step, 2 epochs
    model = out / "model"
    assert (model / "model.safetensors").is_file() and (model / "config.json").is_file()
    config = json.loads((model / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and len(config["id2label"]) == 1
    losses = [json.loads(line)["loss"] for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert losses and all(math.isfinite(x) for x in losses)


def test_resuming_with_other_settings_is_refused(trained, tiny):
    from rag.train.reranker import RerankSettings as Train
    from rag.train.reranker import train

    out, _, _ = trained
    before = sorted(p.name for p in (out / "checkpoint").iterdir())
    other = Train(base=str(tiny), epochs=2, lr=1e-3, batch_size=4, group=3, max_length=32, loss="bce")
    with pytest.raises(RagError, match="other settings.*loss"):
        train(GROUPS, out, other, progress=False)
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == before


def test_bce_loss_trains_too(tiny, tmp_path):
    from rag.train.reranker import RerankSettings as Train
    from rag.train.reranker import train

    settings = Train(base=str(tiny), epochs=1, lr=1e-3, batch_size=4, group=3, max_length=32, loss="bce")
    tmp_path.joinpath("run").mkdir()
    result = train(GROUPS, tmp_path / "run", settings, progress=False)
    assert result.steps == 3 and (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_onnx_and_torch_give_the_same_order(trained, tmp_path):
    import shutil

    from rag.rerankers.export import export_reranker
    from rag.rerankers.loading import load_reranker

    folder = tmp_path / "ce"
    shutil.copytree(trained[0] / "model", folder)
    export_reranker(folder, say=lambda line: None)
    texts = [g.passages[k] for g in GROUPS[:4] for k in range(3)]
    torch_scores = load_reranker(str(folder), backend="torch").score("where is item 2?", texts)
    onnx_scores = load_reranker(str(folder), backend="onnx-fp32").score("where is item 2?", texts)
    assert max(abs(a - b) for a, b in zip(torch_scores, onnx_scores)) < 1e-4
    assert fused_order(torch_scores, math.inf, 0) == fused_order(onnx_scores, math.inf, 0)
    assert load_reranker(str(folder)).dtype == "int8"  # the default: int8 ONNX where it is there


def test_the_onnx_path_never_imports_torch(trained, tmp_path):
    import shutil
    import subprocess
    import sys

    from rag.rerankers.export import export_reranker

    folder = tmp_path / "ce"
    shutil.copytree(trained[0] / "model", folder)
    export_reranker(folder, say=lambda line: None)
    script = (
        "import sys; from rag.rerankers.loading import load_reranker; "
        f"r = load_reranker({str(folder)!r}); print(len(r.score('q', ['a', 'b'])), r.runtime, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2", "onnxruntime", "False"]


def test_rerank_keeps_every_passage_and_labels_the_ones_it_read(trained):
    from rag.rerankers.apply import rerank
    from rag.rerankers.loading import load_reranker

    model = load_reranker(str(trained[0] / "model"), backend="torch")
    passages = [_passage(i, f"d{i}", t) for i, t in enumerate(p for g in GROUPS[:3] for p in g.passages)]
    settings = RerankSettings(model=model.name, pool=4, weight=math.inf)
    out = rerank("where is item 1?", passages, settings, model)
    assert sorted(p.chunk_id for p in out) == list(range(len(passages)))
    assert [p.rank for p in out] == list(range(1, len(passages) + 1))
    assert {p.chunk_id for p in out if p.reranker} == {0, 1, 2, 3}  # the pool, labelled with the model
    assert [p.chunk_id for p in out[4:]] == list(range(4, len(passages)))
    assert out == rerank("where is item 1?", passages, settings, model)  # deterministic
    assert [replace(p, rank=0, rerank_score=None, reranker=None) for p in sorted(out, key=lambda p: p.chunk_id)] == [
        replace(p, rank=0) for p in passages
    ]


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, embedder_name="all-MiniLM-L6-v2"):
    folder = tmp_path_factory.mktemp("docs")
    for i in range(6):
        (folder / f"d{i}.txt").write_text(f"Document {i} says item {i} is kept in room {i * 7}.\n", encoding="utf-8")
    index = tmp_path_factory.mktemp("idx") / "idx"
    result = CliRunner().invoke(main, ["index", str(folder), "--index", str(index), "-q"])
    assert result.exit_code == 0, result.output
    return index


def test_search_with_a_reranker_returns_the_same_passages_reordered(small_index, trained):
    model = str(trained[0] / "model")
    runner = CliRunner()
    plain = runner.invoke(main, ["search", "where is item 3?", "--index", str(small_index), "-k", "6", "--json"])
    ranked = runner.invoke(
        main, ["search", "where is item 3?", "--index", str(small_index), "-k", "6", "--json", "--reranker", model]
    )
    assert plain.exit_code == 0 and ranked.exit_code == 0, ranked.output
    before, after = json.loads(plain.output), json.loads(ranked.output)
    assert sorted(p["chunk_id"] for p in before["passages"]) == sorted(p["chunk_id"] for p in after["passages"])
    assert all(p["reranker"] == model and p["rerank_score"] is not None for p in after["passages"])
    assert after["retriever"]["rerank"]["model"] == model and "rerank" not in before["retriever"]
    text = runner.invoke(main, ["search", "where is item 3?", "--index", str(small_index), "--reranker", model])
    assert text.exit_code == 0 and f" {model}  " in text.output  # the score says which model gave it


@pytest.mark.parametrize("command", ["search", "ask"])
def test_a_reranker_without_weights_is_one_line(small_index, tmp_path, command):
    missing = tmp_path / "no-such-model"
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in (str(missing), str(empty)):
        result = CliRunner().invoke(
            main, [command, "where is item 3?", "--index", str(small_index), "--reranker", name]
        )
        assert result.exit_code != 0
        message = result.output.strip()
        assert len(message.splitlines()) == 1 and name in message and "CrossEncoder" in message
    assert not missing.exists() and list(empty.iterdir()) == []


def test_every_command_takes_its_retrieval_defaults_from_config():
    from rag import config
    from rag.cli import main as group

    for name in ("search", "ask", "compare", "bench"):
        params = {p.name: p for p in group.commands[name].params}
        assert params["retriever"].default == config.DEFAULT_RETRIEVER, name
        assert params["rerank_pool"].default == config.DEFAULT_RERANK_POOL, name
        assert params["reranker"].default is None, name  # None: rag.rerankers.loading.default_reranker decides
    from rag.pipeline import Pipeline
    from rag.retrieve import Retriever, as_retriever

    assert as_retriever(None) == Retriever() and Retriever().kind == config.DEFAULT_RETRIEVER
    assert Pipeline.__dataclass_fields__["retriever"].default is None


# --- rag train reranker, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_squad(tmp_path_factory) -> Path:
    from tiny_models import tiny_towns

    return tiny_towns(tmp_path_factory.mktemp("data") / "tiny.json", ("Paris", "Lyon", "Nice", "Metz"), stadium=True)


def test_rag_train_reranker_refuses_a_foreign_out_folder_and_leaves_it_intact(tiny, tiny_squad, tmp_path):
    from conftest import folder_bytes

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my thesis")
    before = folder_bytes(out)
    args = [
        "train",
        "reranker",
        "--data",
        str(tiny_squad),
        "--out",
        str(out),
        "--base",
        str(tiny),
        "--held-in",
        "1",
        "-q",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "did not write" in result.output and str(out) in result.output
    assert folder_bytes(out) == before


def test_rag_train_reranker_end_to_end_writes_a_model_folder_with_its_card(tiny, tiny_squad, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "reranker", "--data", str(tiny_squad), "--out", str(out), "--base", str(tiny), "--held-in", "1",
            "--group", "3", "--batch-size", "2", "--lr", "1e-3", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model = out / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "rag-reranker.json", "model.onnx",
                 "model-int8.onnx"):  # fmt: skip
        assert (model / name).is_file(), name
    record = json.loads((model / "rag-reranker.json").read_text())
    assert record["format"] == "rag-reranker" and record["command"].startswith("rag train reranker")
    held = record["settings"]["held_in"]
    assert len(held) == 1 and record["metrics"]["held_in"]["questions"] == 4  # one article: 4 questions
    assert record["groups_trained"] <= 12  # never a held-in question
    int8 = record["metrics"]["held_in_int8"]
    assert {"retriever", "chosen", "latency_ms_p50", "grid"} <= set(int8) and int8["chosen"][
        "pool"
    ] == config.DEFAULT_RERANK_POOL
    card = (model / "README.md").read_text()
    assert "CC BY-SA 4.0" in card and "Seed 0" in card and record["cpu"] in card and held[0] in card
    assert "recall@1" in result.output
    from rag.rerankers.loading import load_reranker

    assert load_reranker(str(model)).runtime == "onnxruntime"


@pytest.mark.parametrize("damaged", ["model-int8.onnx", "tokenizer.json"])
def test_a_damaged_reranker_file_is_one_line_and_the_index_is_untouched(small_index, trained, tmp_path, damaged):
    import shutil

    from conftest import folder_bytes

    from rag.rerankers.export import export_reranker

    folder = tmp_path / "ce"
    shutil.copytree(trained[0] / "model", folder)
    export_reranker(folder, say=lambda line: None)
    (folder / damaged).write_text("{ not what it should be")
    before = folder_bytes(small_index)
    result = CliRunner().invoke(
        main, ["search", "where is item 3?", "--index", str(small_index), "--reranker", str(folder)]
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and str(folder) in result.output and "damaged" in result.output
    assert folder_bytes(small_index) == before


def test_a_sentence_transformers_cross_encoder_folder_loads_and_ranks_as_it_does(trained, tmp_path):
    from sentence_transformers import CrossEncoder

    from rag.rerankers.loading import load_reranker

    saved = tmp_path / "st-cross-encoder"
    CrossEncoder(str(trained[0] / "model"), device="cpu").save(str(saved))  # what a user's training writes
    texts = [g.passages[k] for g in GROUPS[:4] for k in range(3)]
    theirs = CrossEncoder(str(saved), device="cpu").predict([("where is item 2?", t) for t in texts])
    ours = load_reranker(str(saved), backend="torch").score("where is item 2?", texts)
    assert fused_order(list(theirs), math.inf, 0) == fused_order(ours, math.inf, 0)
    assert max(abs(a - 1 / (1 + math.exp(-b))) for a, b in zip(theirs, ours)) < 1e-5  # its sigmoid of our logit


def test_a_pairs_score_does_not_depend_on_the_other_candidates(trained, tmp_path):
    """int8 quantises activations per run: batched, a pair's score would move with its neighbours."""
    import shutil

    from rag.rerankers.export import export_reranker
    from rag.rerankers.loading import load_reranker

    folder = tmp_path / "ce"
    shutil.copytree(trained[0] / "model", folder)
    export_reranker(folder, say=lambda line: None)
    model = load_reranker(str(folder))
    assert model.dtype == "int8"
    texts = [g.passages[k] for g in GROUPS[:5] for k in range(3)]
    together = model.score("where is item 2?", texts)
    alone = [model.score("where is item 2?", [t])[0] for t in texts]
    assert together == alone


def test_training_into_a_folder_rag_did_not_make_is_refused_and_it_stays_intact(tiny, tmp_path):
    """The trainer replaces its own `model` and checkpoint folders: called directly on a folder a
    user filled (one with a `model` folder of their own), it touches nothing."""
    from conftest import folder_bytes

    from rag.train.reranker import RerankSettings as Train
    from rag.train.reranker import train

    out = tmp_path / "mine"
    (out / "model").mkdir(parents=True)
    (out / "model" / "weights.bin").write_bytes(b"the user's own")
    before = folder_bytes(out)
    settings = Train(base=str(tiny), epochs=1, lr=1e-3, batch_size=4, group=3, max_length=32)
    with pytest.raises(RagError, match="did not write"):
        train(GROUPS, out, settings, progress=False)
    assert folder_bytes(out) == before


def test_rag_train_reranker_curve_and_cooldown_keep_their_points_and_branch(tiny, tiny_squad, tmp_path, monkeypatch):
    from conftest import folder_bytes

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    common = ["--data", str(tiny_squad), "--base", str(tiny), "--held-in", "1", "--group", "3", "--batch-size", "2",
              "--lr", "1e-3", "--epochs", "2", "--no-onnx", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, ["train", "reranker", "--out", str(out), "--curve", "4,8", *common])
    assert result.exit_code == 0, result.output
    points = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [p["questions"] for p in points] == [4, 8] and [p["step"] for p in points] == [2, 4]
    for p in points:
        assert 0 <= p["reranked"]["recall@1"] <= 1 and p["held_in_questions"] == 4
        assert (out / p["model"] / "model.safetensors").is_file()
    from rag.train.reranker import RerankSettings
    from rag.train.run_reranker import train_reranker

    source = tmp_path / "long"  # a run still going: stopped at step 3 of 12
    settings = RerankSettings(base=str(tiny), epochs=2, lr=1e-3, batch_size=2, group=3)
    train_reranker(tiny_squad, source, settings, held_in=1, progress=False, stop_after=3, checkpoint_seconds=0,
                   export=False, say=lambda line: None)  # fmt: skip
    before = folder_bytes(source)
    cool = tmp_path / "cool"
    branched = CliRunner().invoke(
        main, ["train", "reranker", "--out", str(cool), "--from-run", str(source), "--finish-at", "10", *common]
    )
    assert branched.exit_code == 0, branched.output
    assert folder_bytes(source) == before  # the run it branched from is only read
    record = json.loads((cool / "model" / "rag-reranker.json").read_text())
    assert record["settings"]["cooldown"] == {"from_step": 3, "questions": 10}
    assert json.loads((cool / "checkpoint" / "state.json").read_text())["step"] == 5  # 10 questions, 2 a step
