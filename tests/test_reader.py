"""The encoder-only reader: the offsets recipe, span decoding, abstention, ONNX against torch,
training that resumes, and the reader as an answerer in ask/compare/bench.

Every model here is tiny (two layers of 32) and random or trained for a few steps: the tests
check behaviour (labels, substrings, resumption, refusals), never quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import folder_bytes, write_qa_set
from tiny_models import build_tiny_qa, tiny_towns

from rag.documents import Passage
from rag.readers.features import Window, label, span_text, windows
from rag.readers.spans import best_spans
from rag.train.reader import base_folder

LONG = " ".join(
    f"Sentence {i} says that item {i} weighs {i * 7} grams and is {['red', 'blue', 'green'][i % 3]}." for i in range(60)
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_folder("all-MiniLM-L6-v2"))


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory) -> Path:
    return build_tiny_qa(tmp_path_factory.mktemp("models") / "tiny-qa")


# --- the offsets recipe -------------------------------------------------------------------------


@pytest.mark.parametrize("item", [0, 1, 17, 29, 31, 44, 59])
def test_labels_point_at_the_answer_in_every_window_that_holds_it(tokenizer, item):
    """Token span -> characters gives the answer text exactly, wherever the answer falls (window
    edges, the overlap of two windows); windows without the whole answer are labelled [CLS]."""
    answer = f"item {item} weighs {item * 7} grams"
    start = LONG.index(answer)
    found = windows(tokenizer, ["How heavy is it?"], [LONG], max_length=64, stride=24)
    assert len(found) > 5  # the passage really is cut into strided windows
    labelled = 0
    for w in found:
        label(w, start, answer)
        context = [o for o in w.offsets if o is not None]
        inside = context[0][0] <= start and context[-1][1] >= start + len(answer)
        if inside:
            labelled += 1
            assert span_text(w, LONG) == answer
            assert w.offsets[w.start] is not None and w.offsets[w.end] is not None
        else:
            assert (w.start, w.end) == (0, 0)
        assert len(w) <= 64
    assert labelled >= 1


def test_windows_overlap_by_the_stride_and_cover_the_whole_passage(tokenizer):
    found = windows(tokenizer, ["q?"], [LONG], max_length=64, stride=24)
    spans = [[o for o in w.offsets if o is not None] for w in found]
    assert spans[0][0][0] == 0 and spans[-1][-1][1] == len(LONG.rstrip(".")) + 1
    for a, b in zip(spans, spans[1:]):
        assert b[0][0] < a[-1][1]  # the next window starts inside this one
    assert all(w.passage == 0 for w in found)


def test_no_answer_and_missing_answer_label_cls(tokenizer):
    w = windows(tokenizer, ["q?"], ["A short passage about Paris."])[0]
    assert (label(w, None, None).start, w.end) == (0, 0)
    assert (label(w, 500, "nowhere").start, w.end) == (0, 0)
    assert span_text(w, "A short passage about Paris.") == ""


def test_a_very_long_question_is_cut_and_the_passage_still_read(tokenizer):
    question = "why " * 400
    found = windows(tokenizer, [question], ["Paris is the capital of France."], max_length=64, stride=16)
    assert found and all(len(w) <= 64 for w in found)
    assert any(o is not None for o in found[0].offsets)


# --- spans ----------------------------------------------------------------------------------------


def test_best_spans_respect_context_order_and_length():
    texts = ["alpha beta gamma"]
    w = Window([101, 1, 102, 5, 6, 7, 102], None, [None, None, None, (0, 5), (6, 10), (11, 16), None], 0)
    start = np.array([9, 50, 0, 1, 2, 3, 0], dtype=np.float32)  # the best start is a question token
    end = np.array([9, 0, 0, 5, 1, 0, 60], dtype=np.float32)  # the best end is a special token
    ranked, null = best_spans([w], [start], [end], texts, top=3, max_tokens=2)
    assert null == 18.0
    assert ranked[0].text == "alpha" and ranked[0].score == 6.0
    for c in ranked:
        assert texts[0][c.start : c.end] == c.text
        assert len(c.text.split()) <= 2  # max_tokens
    assert all(c.text != "alpha beta gamma" for c in ranked)


# --- the reader -----------------------------------------------------------------------------------


def _passages(texts):
    return [Passage(i, f"doc{i}.md", t, 0, len(t), 1, 1, 1.0, i + 1) for i, t in enumerate(texts)]


PASSAGES = [
    "The Eiffel Tower is in Paris and was finished in 1889.",
    "Bananas are yellow when ripe. " * 40,  # long: several windows
    "BERT is an encoder-only transformer trained with masked language modelling.",
]


def test_every_answer_is_a_substring_of_the_passage_it_cites(tiny_qa):
    from rag.readers.loading import load_reader

    reader = load_reader(str(tiny_qa), backend="torch")
    passages = _passages(PASSAGES)
    for question in ["Where is the tower?", "What colour are bananas?", "What is BERT?", "When?"]:
        answer = reader.generate(question, passages)
        assert answer.family == "encoder-only" and answer.found is True
        span = answer.span
        assert passages[span.passage].text[span.start : span.end] == answer.text
        assert answer.source == passages[span.passage].citation
        assert answer.candidates and answer.candidates[0]["text"] == answer.text
        for c in answer.candidates:
            assert passages[c["passage"]].text[c["start"] : c["end"]] == c["text"]


def test_below_the_margin_the_reader_says_not_in_the_documents(tiny_qa):
    from rag.readers.base import NOT_FOUND
    from rag.readers.loading import load_reader

    reader = load_reader(str(tiny_qa), backend="torch")
    reader.margin = 1e9
    answer = reader.generate("Where is the tower?", _passages(PASSAGES))
    assert answer.text == NOT_FOUND and answer.found is False and answer.span is None
    assert answer.candidates  # the best span is still there to inspect
    assert answer.to_dict()["found"] is False
    empty = reader.generate("Where?", [])
    assert empty.found is False and empty.candidates == []


def test_onnx_and_torch_pick_the_same_span(tiny_qa, tmp_path):
    import shutil

    from rag.readers.export import export_reader
    from rag.readers.loading import clear_loaded, load_reader

    folder = tmp_path / "qa"
    shutil.copytree(tiny_qa, folder)
    export_reader(folder, say=lambda line: None)
    clear_loaded()
    torch_reader = load_reader(str(folder), backend="torch")
    onnx_reader = load_reader(str(folder), backend="onnx-fp32")
    int8_reader = load_reader(str(folder))  # the default: int8 ONNX
    assert onnx_reader.runtime == "onnxruntime" and int8_reader.dtype == "int8"
    passages = [p.text for p in _passages(PASSAGES)]
    for question in ["Where is the tower?", "What colour are bananas?", "What is BERT?"]:
        a, b = torch_reader.read(question, passages), onnx_reader.read(question, passages)
        assert (a.candidates[0].passage, a.candidates[0].start, a.candidates[0].end) == (
            b.candidates[0].passage,
            b.candidates[0].start,
            b.candidates[0].end,
        )
        assert abs(a.candidates[0].score - b.candidates[0].score) < 1e-3
        assert int8_reader.read(question, passages).candidates


def test_a_passages_reading_does_not_depend_on_the_other_passages(tiny_qa, tmp_path):
    """int8 quantises activations per run: batched, a window's logits (and so the answer and the
    decision to decline) would move with the passages read beside it."""
    import shutil

    from rag.readers.export import export_reader
    from rag.readers.loading import clear_loaded, load_reader

    folder = tmp_path / "qa"
    shutil.copytree(tiny_qa, folder)
    export_reader(folder, say=lambda line: None)
    clear_loaded()
    reader = load_reader(str(folder))
    assert reader.dtype == "int8"
    passages = [p.text for p in _passages(PASSAGES)]
    for question in ["Where is the tower?", "What colour are bananas?"]:
        together = reader.read(question, passages)
        for k, text in enumerate(passages):
            alone = reader.read(question, [text])
            best_k = [c for c in together.candidates if c.passage == k][:1]
            if best_k and alone.candidates:
                assert best_k[0].score == alone.candidates[0].score
                assert (best_k[0].start, best_k[0].end) == (alone.candidates[0].start, alone.candidates[0].end)


# --- training ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_squad(tmp_path_factory) -> Path:
    return tiny_towns(tmp_path_factory.mktemp("data") / "tiny.json")


def _settings(tiny_qa, **kw):
    from rag.train.reader import TrainSettings

    return TrainSettings(
        base=str(tiny_qa), epochs=kw.pop("epochs", 3), batch_size=2, lr=1e-3, max_length=64, stride=16, **kw
    )


def test_split_is_by_article_never_by_question(tiny_squad):
    from rag.train.data import load_examples, split_by_article

    examples = load_examples(tiny_squad)
    train, held = split_by_article(examples, 1)
    assert {e.article for e in train}.isdisjoint({e.article for e in held})
    assert len(train) + len(held) == len(examples) == 9 and len({e.article for e in held}) == 1
    assert all(e.context[e.answer_start : e.answer_start + len(e.answer)] == e.answer for e in examples)


def test_a_killed_training_resumes_where_it_stopped_and_ends_where_an_unbroken_one_does(tiny_qa, tiny_squad, tmp_path):
    from safetensors.numpy import load_file

    from rag.train.data import load_examples
    from rag.train.reader import CHECKPOINT, train

    examples = load_examples(tiny_squad)
    whole = train(examples, tmp_path / "whole", _settings(tiny_qa), threads=1, progress=False)
    assert whole.steps == 15 and (whole.folder / "model.safetensors").is_file()

    first = train(
        examples, tmp_path / "broken", _settings(tiny_qa), threads=1, progress=False, checkpoint_seconds=0, stop_after=7
    )  # "killed" after step 7, its checkpoint written
    assert first.steps == 7 and not (tmp_path / "broken" / "model").exists()
    state = json.loads((tmp_path / "broken" / CHECKPOINT / "state.json").read_text())
    assert state["step"] == 7 and 0 <= state["seconds"] <= first.seconds + 0.05  # kept to 0.1 s
    second = train(examples, tmp_path / "broken", _settings(tiny_qa), threads=1, progress=False, say=lambda line: None)
    assert second.resumed_from == 7 and second.steps == 15
    # the run's training time spans both calls: the checkpoint's seconds, then the second call's
    # (not the first call's own total, which also counts the checkpoint's writing after its clock was read)
    assert second.seconds > state["seconds"]
    a, b = load_file(str(whole.folder / "model.safetensors")), load_file(str(second.folder / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    with pytest.raises(Exception, match="other settings"):
        train(examples, tmp_path / "broken", _settings(tiny_qa, seed=1), threads=1, progress=False)


def test_rag_train_reader_refuses_a_foreign_out_folder_and_leaves_it_intact(tiny_qa, tiny_squad, tmp_path):
    from click.testing import CliRunner

    from rag.cli import main

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my thesis")
    before = folder_bytes(out)
    result = CliRunner().invoke(
        main,
        [
            "train",
            "reader",
            "--data",
            str(tiny_squad),
            "--out",
            str(out),
            "--base",
            str(tiny_qa),
            "--held-in",
            "0",
            "--negatives",
            "0",
            "--quiet",
        ],
    )
    assert result.exit_code != 0
    assert "did not write" in result.output and str(out) in result.output
    assert folder_bytes(out) == before


def test_rag_train_reader_end_to_end_writes_a_model_folder_with_its_card(tiny_qa, tiny_squad, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import main

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = [
        "train",
        "reader",
        "--data",
        str(tiny_squad),
        "--out",
        str(out),
        "--base",
        str(tiny_qa),
        "--held-in",
        "1",
        "--negatives",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model = out / "model"
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
        "rag-reader.json",
        "model.onnx",
        "model-int8.onnx",
    ):
        assert (model / name).is_file(), name
    record = json.loads((model / "rag-reader.json").read_text())
    assert record["format"] == "rag-reader" and record["settings"]["negatives"] == 1
    assert len(record["settings"]["held_in"]) == 1 and record["metrics"]["held_in"]["questions"] >= 1
    assert record["command"].startswith("rag train reader")
    card = (model / "README.md").read_text()
    assert "CC BY-SA 4.0" in card and "Seed 0" in card and record["cpu"] in card
    assert "held-in" in result.output


# --- the reader as an answerer ------------------------------------------------------------------


@pytest.fixture
def reader_corpus(tmp_path):
    docs = {
        "tower.md": "The Eiffel Tower is in Paris and was finished in 1889.\n",
        "bert.md": "BERT is an encoder-only transformer trained with masked language modelling.\n",
    }
    questions = [
        {"id": "q1", "question": "When was the Eiffel Tower finished?", "answer": "1889", "doc": "tower.md"},
        {"id": "q2", "question": "What is BERT?", "answer": "an encoder-only transformer", "doc": "bert.md"},
    ]
    return write_qa_set(tmp_path, docs, questions)


def test_ask_compare_and_bench_treat_a_reader_as_an_answerer(tiny_qa, reader_corpus, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import main

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    index = tmp_path / "idx"
    docs = reader_corpus.parent / "docs"
    assert runner.invoke(main, ["index", str(docs), "--index", str(index), "-q"]).exit_code == 0
    ask = runner.invoke(
        main, ["ask", "When was the tower finished?", "-g", str(tiny_qa), "--index", str(index), "--json"]
    )
    assert ask.exit_code == 0, ask.output
    answer = json.loads(ask.stdout)
    assert answer["family"] == "encoder-only" and answer["found"] in (True, False)
    if answer["found"]:
        span = answer["span"]
        assert answer["passages"][span["passage"]]["text"][span["start"] : span["end"]] == answer["text"]
    compare = runner.invoke(
        main, ["compare", "When was the tower finished?", "-g", str(tiny_qa), "--index", str(index), "--extractive"]
    )
    assert compare.exit_code == 0, compare.output
    assert "encoder-only" in compare.output and "+extractive" not in compare.output

    out = tmp_path / "bench"
    args = ["bench", str(reader_corpus), "-g", str(tiny_qa), "--out", str(out), "-q"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    answered = [r for r in rows if r.get("generator") == str(tiny_qa)]
    assert len(answered) == 2 and all(r["found"] in (True, False) for r in answered)
    sessions = [json.loads(line) for line in (out / "generators.jsonl").read_text().splitlines()]
    assert [s["family"] for s in sessions if s.get("generator") == str(tiny_qa)] == ["encoder-only"]
    again = runner.invoke(main, args)
    assert again.exit_code == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == len(rows)  # resumed: nothing answered twice


def test_a_span_inside_a_word_is_widened_to_the_whole_word():
    texts = ["unbelievable story"]
    w = Window(
        [101, 9, 102, 5, 6, 7, 8, 102],
        None,
        [None, None, None, (0, 2), (2, 6), (6, 12), (13, 18), None],
        0,
        words=[None, None, None, 0, 0, 0, 1, None],
    )
    start = np.array([0, 0, 0, 0, 9, 0, 0, 0], dtype=np.float32)  # "##beli" only
    end = np.array([0, 0, 0, 0, 9, 0, 0, 0], dtype=np.float32)
    ranked, _ = best_spans([w], [start], [end], texts, top=1)
    assert ranked[0].text == "unbelievable" and (ranked[0].start, ranked[0].end) == (0, 12)


def test_a_kill_between_the_checkpoint_renames_loses_no_checkpoint(tiny_qa, tiny_squad, tmp_path):
    import os

    from rag.train.data import load_examples
    from rag.train.reader import CHECKPOINT, train

    examples = load_examples(tiny_squad)
    out = tmp_path / "run"
    train(examples, out, _settings(tiny_qa), threads=1, progress=False, checkpoint_seconds=0, stop_after=4)
    os.replace(out / CHECKPOINT, out / f".{CHECKPOINT}.tmp")  # as if killed after moving the old one aside
    again = train(examples, out, _settings(tiny_qa), threads=1, progress=False, stop_after=1, say=lambda line: None)
    assert again.resumed_from == 4 and again.steps == 5


def test_a_damaged_checkpoint_is_one_line_and_nothing_else_is_touched(tiny_qa, tiny_squad, tmp_path):
    from rag.errors import RagError
    from rag.train.data import load_examples
    from rag.train.reader import CHECKPOINT, train

    examples = load_examples(tiny_squad)
    out = tmp_path / "run"
    train(examples, out, _settings(tiny_qa), threads=1, progress=False, checkpoint_seconds=0, stop_after=2)
    (out / CHECKPOINT / "optimizer.safetensors").write_bytes(b"garbage")
    before = folder_bytes(out)
    with pytest.raises(RagError, match="optimizer.safetensors is damaged.*move .* away"):
        train(examples, out, _settings(tiny_qa), threads=1, progress=False, say=lambda line: None)
    assert folder_bytes(out) == before


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b'{"data": [{"title": "x"}]}'])
def test_bad_training_data_is_one_line_naming_the_file(tmp_path, content):
    from click.testing import CliRunner

    from rag.cli import main

    data = tmp_path / "bad.json"
    data.write_bytes(content)
    result = CliRunner().invoke(main, ["train", "reader", "--data", str(data), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert str(data) in result.output or "bad.json" in result.output
    assert not (tmp_path / "out").exists()


def test_widening_keeps_to_the_tokenizers_words_so_cjk_characters_stay_apart(tokenizer):
    text = "我住在北京市中心。"
    w = windows(tokenizer, ["哪里?"], [text])[0]
    pieces = [i for i, o in enumerate(w.offsets) if o is not None and text[o[0] : o[1]] in "北京"]
    start = np.zeros(len(w), dtype=np.float32)
    end = np.zeros(len(w), dtype=np.float32)
    start[pieces[0]], end[pieces[-1]] = 9, 9
    ranked, _ = best_spans([w], [start], [end], [text], top=1)
    assert ranked[0].text == "北京"


def test_the_margin_declines_at_most_a_tenth_of_answerable_readings():
    from rag.readers.evaluate import Scored, calibrate

    answerable = [Scored(1.0, 1.0, float(g), 0.0) for g in range(100)]
    unanswerable = [Scored(0.0, 0.0, float(g), 0.0) for g in (-5, 3, 50)]
    margin = calibrate(answerable, unanswerable)
    assert sum(s.gap < margin for s in answerable) == 10
    assert sum(s.gap < margin for s in unanswerable) == 2
    assert calibrate(answerable, []) == float("-inf")  # nothing to calibrate against: never decline


def test_special_tokens_written_in_a_passage_are_read_as_text(tokenizer):
    text = "The [CLS] token starts every input and [SEP] ends it."
    w = windows(tokenizer, ["What starts every input?"], [text])[0]
    special = set(tokenizer.all_special_ids)
    assert sum(t in special for t in w.input_ids) == 3  # [CLS] question [SEP] passage [SEP], nothing more
    assert "".join(text[o[0] : o[1]] for o in w.offsets if o is not None).replace(" ", "") == text.replace(" ", "")


def test_no_span_crosses_a_blank_line():
    texts = ["Heading\n\nBody text"]
    w = Window(
        [101, 9, 102, 5, 6, 7, 102],
        None,
        [None, None, None, (0, 7), (9, 13), (14, 18), None],
        0,
        words=[None, None, None, 0, 1, 2, None],
    )
    start = np.array([0, 0, 0, 9, 2, 1, 0], dtype=np.float32)  # best: "Heading" ... "text", across the break
    end = np.array([0, 0, 0, 0, 1, 9, 0], dtype=np.float32)
    ranked, _ = best_spans([w], [start], [end], texts, top=5)
    assert ranked and all("\n\n" not in c.text for c in ranked)
    assert ranked[0].text == "Body text"
