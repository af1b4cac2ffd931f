"""Damage and odd input, tried as a hostile file would: each case ends in one line naming the file
and what repairs it, or in a correct result; never a traceback, silence, or lost results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_qa_set
from test_index import age, build, corpus  # noqa: F401 (corpus: a fixture)
from tiny_models import build_tiny_qa

from rag.bench.results import JsonlLog
from rag.cli import main
from rag.index import Index


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory) -> Path:
    return build_tiny_qa(tmp_path_factory.mktemp("models") / "tiny-qa")


def test_a_bench_whose_passages_hold_a_unicode_line_separator_resumes(tiny_qa, tmp_path, monkeypatch):
    separator = "\u2028"
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    docs = {"okapi.txt": f"The okapi lives in the Ituri rainforest.{separator}It is related to the giraffe.\n"}
    questions = [
        {"id": "q1", "question": "Where does the okapi live?", "answer": "Ituri rainforest", "doc": "okapi.txt"}
    ]
    qa = write_qa_set(tmp_path, docs, questions)
    out = tmp_path / "o"
    args = ["bench", str(qa), "-g", str(tiny_qa), "--out", str(out), "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    raw = (out / "results.jsonl").read_text(encoding="utf-8")
    assert separator in raw  # written raw (valid JSON), so reading must not split there
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert (out / "results.jsonl").read_text(encoding="utf-8") == raw  # nothing answered twice, nothing lost


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\r", "\x1c"])
def test_results_lines_end_at_newlines_only(separator, tmp_path):
    log = JsonlLog(tmp_path / "results.jsonl")
    records = [{"answer": f"one{separator}two"}, {"answer": "three"}]
    for r in records:
        log.append(r)
    assert log.read() == records


def test_a_damaged_results_line_is_set_aside_said_in_one_line_and_the_rest_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    warnings: list[str] = []
    log = JsonlLog(path, warnings.append)
    for answer in ("kept", "changed", "also kept"):
        log.append({"answer": answer})
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"changed", b"chanGed")  # same size, still valid JSON
    path.write_bytes(b"\n".join(lines) + b"{garbage\n")
    assert log.read() == [{"answer": "kept"}, {"answer": "also kept"}]
    assert [w.split(" was damaged")[0] for w in warnings] == [f"{path}:2", f"{path}:4"]
    aside = path.with_name("results.jsonl.damaged").read_bytes()
    assert b"chanGed" in aside and b"{garbage" in aside  # nothing is lost
    assert log.read() == [{"answer": "kept"}, {"answer": "also kept"}] and len(warnings) == 2  # said once


# --- the index: BM25 arrays with a damaged header, permissions ------------------------------------


def _flip(path: Path, offset: int, bit: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= bit
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("segment", ["base-000", "delta"])
def test_a_bm25_array_with_a_damaged_header_is_one_line_and_rag_index_repairs_it(segment, corpus, tmp_path, embedder):
    import shutil

    from test_index_recovery import cli, one_line

    from rag import lexical, store

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "zz-new.md").write_text("Okapis live in the Ituri rainforest of Congo.\n", encoding="utf-8")
    age(corpus)
    build(corpus, idx, embedder)  # a small update: the new chunk goes to the delta segment
    gen = store.gen_dir(idx, max(store.gen_dirs(idx)))
    pristine = tmp_path / "pristine"
    shutil.copytree(idx, pristine)
    # one flipped bit in each header field's text: numpy raises ValueError, SyntaxError or TokenError
    for name in lexical.FILES:
        for offset, bit in ((12, 0x01), (13, 0x20), (20, 0x04), (40, 0x08), (55, 0x02)):
            shutil.rmtree(idx)
            shutil.copytree(pristine, idx)
            target = gen / segment / lexical.FOLDER / name
            _flip(target, offset, bit)
            where = f"{gen.name}/{segment}/{lexical.FOLDER}/{name}"
            one_line(cli("search", "okapi", "--index", idx, "--retriever", "hybrid"), where, "rag index FOLDER")
            one_line(cli("info", "--index", idx, "--check"), where, "rag index FOLDER")
    repaired = cli("index", corpus, "--index", idx)
    assert repaired.exit_code == 0, repaired.output
    assert "damaged" in repaired.output and name in repaired.output  # the user is told what was repaired
    found = cli("search", "okapi", "--index", idx, "--retriever", "hybrid")
    assert found.exit_code == 0 and "zz-new.md" in found.output


def test_an_index_file_this_user_may_not_read_is_reported_and_never_rebuilt(corpus, tmp_path, embedder, monkeypatch):
    from test_index_recovery import cli

    from rag import faiss_index, store

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    gen = store.gen_dir(idx, 1)
    denied = gen / "base-000" / faiss_index.FILE
    real_sha, real_access = store.file_sha256, os.access

    def sha(path, *a, **kw):  # chmod 000 would not stop root, which CI may be
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha(path, *a, **kw)

    monkeypatch.setattr(store, "file_sha256", sha)
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **kw: Path(p) != denied and real_access(p, mode, *a, **kw))
    (corpus / "zz-new.md").write_text("Okapis live in the Ituri rainforest of Congo.\n", encoding="utf-8")
    age(corpus)
    result = cli("index", corpus, "--index", idx)
    errors = [line for line in result.output.splitlines() if not line.startswith("warning: ")]
    assert result.exit_code == 1 and len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "permission denied" in errors[0] and str(denied) in errors[0]
    assert sorted(store.gen_dirs(idx)) == [1]  # no new generation was written around it


# --- a model folder's rag record ------------------------------------------------------------------


RECORD_DAMAGE = [
    b"",
    b"{not json",
    b"\xff\xfe garbage",
    b"[]",
    b'{"format": "rag-reader"}',
    b'{"format": "rag-reader", "margin": "-2", "max_length": 384, "stride": 128, "max_answer_tokens": 30}',
    b'{"format": "rag-reader", "margin": -2, "max_length": true, "stride": 128, "max_answer_tokens": 30}',
    b'{"format": "rag-reader", "margin": -2, "max_length": 384, "stride": -1, "max_answer_tokens": 30}',
]


@pytest.mark.parametrize("content", RECORD_DAMAGE)
def test_a_damaged_reader_record_is_one_line_and_never_a_reader_that_cannot_decline(content, tiny_qa, tmp_path):
    import shutil

    from rag.generators.base import ModelNotAvailable
    from rag.readers.loading import clear_loaded, load_reader

    folder = tmp_path / "reader"
    shutil.copytree(tiny_qa, folder)
    (folder / "rag-reader.json").write_bytes(content)
    clear_loaded()
    with pytest.raises(ModelNotAvailable) as caught:
        load_reader(str(folder), backend="torch")
    line = str(caught.value)
    assert "\n" not in line and str(folder / "rag-reader.json") in line and "rag train reader" in line
    result = CliRunner().invoke(main, ["ask", "Where?", "-g", str(folder), "--index", str(tmp_path / "none")])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_a_whole_reader_record_loads_with_its_margin_and_none_means_no_calibration(tiny_qa, tmp_path):
    import shutil

    from rag.readers.loading import clear_loaded, load_reader

    folder = tmp_path / "reader"
    shutil.copytree(tiny_qa, folder)
    record = {"format": "rag-reader", "margin": -1.5, "max_length": 128, "stride": 32, "max_answer_tokens": 20}
    (folder / "rag-reader.json").write_text(json.dumps(record))
    clear_loaded()
    reader = load_reader(str(folder), backend="torch")
    assert (reader.margin, reader.max_length, reader.stride, reader.max_answer_tokens) == (-1.5, 128, 32, 20)
    (folder / "rag-reader.json").write_text(json.dumps({**record, "margin": None}))
    clear_loaded()
    assert load_reader(str(folder), backend="torch").margin == float("-inf")


@pytest.mark.parametrize("content", [b"{oops", b'{"format": "rag-reranker", "max_length": "256"}', b"{}"])
def test_a_damaged_reranker_record_is_one_line(content, tmp_path):
    from tiny_models import build_tiny_cross_encoder

    from rag.generators.base import ModelNotAvailable
    from rag.rerankers.loading import clear_loaded, load_reranker

    folder = build_tiny_cross_encoder(tmp_path / "reranker")
    (folder / "rag-reranker.json").write_bytes(content)
    clear_loaded()
    with pytest.raises(ModelNotAvailable) as caught:
        load_reranker(str(folder), backend="torch")
    assert "\n" not in str(caught.value) and "rag-reranker.json" in str(caught.value)


# --- a generation's marker ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [None, b"", b"{garbage", b'{"format": "rag-index-generation", "generation": 99}'])
def test_a_generation_marker_damaged_is_found_by_check_repaired_by_index_and_retired_later(
    damage, corpus, tmp_path, embedder
):
    from test_index_recovery import cli

    from rag import store
    from rag.generation_marker import gen_marker_ok

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    marker = store.gen_dir(idx, 1) / store.GEN_MARKER
    if damage is None:
        marker.unlink()
    else:
        marker.write_bytes(damage)
    checked = cli("info", "--index", idx, "--check")
    assert checked.exit_code != 0 and "gen-000001/rag-generation.json" in checked.output, checked.output
    repaired = cli("index", corpus, "--index", idx)
    assert repaired.exit_code == 0 and "rag-generation.json was missing or damaged" in repaired.output
    assert gen_marker_ok(store.gen_dir(idx, 1), 1)
    assert cli("info", "--index", idx, "--check").exit_code == 0
    for n in range(3):  # later updates: the first generation is retired like any superseded one
        (corpus / f"zz-{n}.md").write_text(f"Update number {n} mentions okapis.\n", encoding="utf-8")
        age(corpus)
        build(corpus, idx, embedder)
    assert sorted(store.gen_dirs(idx)) == [3, 4]


def test_a_generation_folder_holding_a_users_file_is_never_marked_or_removed(corpus, tmp_path, embedder):
    from rag import store

    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    folder = store.gen_dir(idx, 1)
    (folder / store.GEN_MARKER).unlink()
    (folder / "my-notes.txt").write_text("mine")
    warnings: list[str] = []
    Index.build(corpus, idx, embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert any("holds files rag did not write" in w for w in warnings)
    for n in range(3):
        (corpus / f"zz-{n}.md").write_text(f"Update number {n} mentions okapis.\n", encoding="utf-8")
        age(corpus)
        build(corpus, idx, embedder)
    assert (folder / "my-notes.txt").read_text() == "mine" and not (folder / store.GEN_MARKER).exists()


# --- smaller lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_indexing_an_empty_folder_leaves_no_half_made_index(existing, tmp_path):
    from test_index_recovery import cli, one_line

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "data.json").write_text("{}")  # not a supported document
    idx = tmp_path / "idx"
    if existing:
        idx.mkdir()
    one_line(cli("index", empty, "--index", idx), "no supported documents")
    assert (idx.is_dir() and list(idx.iterdir()) == []) if existing else not idx.exists()
    searched = cli("search", "anything", "--index", idx)
    assert searched.exit_code != 0 and "interrupted" not in searched.output


@pytest.mark.parametrize("variable", ["RAG_DTYPE", "RAG_RUNTIME"])
def test_a_bad_answer_setting_is_one_line_even_where_the_answerer_reads_none(variable, tmp_path, monkeypatch):
    from test_index_recovery import one_line

    monkeypatch.setenv(variable, "bogus")
    result = CliRunner().invoke(main, ["ask", "Where?", "-g", "minilm-reader", "--index", str(tmp_path / "none")])
    one_line(result, f"${variable} is 'bogus'")


def test_a_rerank_pool_of_zero_is_refused_without_a_reranker_too(tmp_path):
    result = CliRunner().invoke(main, ["search", "x", "--rerank-pool", "0", "--index", str(tmp_path / "none")])
    assert result.exit_code == 2 and "--rerank-pool" in result.output


def test_file_names_that_are_not_utf8_are_indexed_cited_and_printed_as_the_shell_quotes_them(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    latin = os.path.join(os.fsencode(docs), b"caf\xe9.txt")
    with open(latin, "wb") as f:
        f.write(b"The okapi lives in the Ituri rainforest.\n")
    with open(os.path.join(os.fsencode(docs), b"empty\xfe\x01.txt"), "wb"):
        pass
    age(docs)
    warnings: list[str] = []
    index = Index.build(docs, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert index.documents() == ["$'caf\\xe9.txt'"]
    assert "skipped $'empty\\xfe\\x01.txt': empty file" in warnings
    assert index.search("okapi", k=1)[0].doc_path == "$'caf\\xe9.txt'"
    again = Index.build(docs, tmp_path / "idx", embedder=embedder, warn=warnings.append, notify=lambda m: None)
    assert again.build_report.unchanged == 1 and again.build_report.chunks_embedded == 0


def test_a_bench_where_no_answerer_can_run_says_its_reason_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    docs = {"okapi.txt": "The okapi lives in the Ituri rainforest.\n"}
    questions = [{"id": "q1", "question": "Where?", "answer": "Ituri rainforest", "doc": "okapi.txt"}]
    qa = write_qa_set(tmp_path, docs, questions)
    result = CliRunner().invoke(main, ["bench", str(qa), "-g", "no-such-model-x", "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 1 and result.output.count("is not available offline") == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: no question was answered")


def test_walking_a_deep_folder_resolves_paths_once_not_per_level(tmp_path, monkeypatch):
    from rag import loaders
    from rag.build.sources import folder_sources

    cur = tmp_path / "deep"
    root = cur
    for i in range(60):
        cur.mkdir()
        (cur / f"f{i}.txt").write_text(f"level {i}\n")
        cur = cur / "d"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "far.txt").write_text("far\n")
    (root / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    calls: list[str] = []
    real = loaders.os.path.realpath
    monkeypatch.setattr(loaders.os.path, "realpath", lambda p, *a, **kw: calls.append(p) or real(p, *a, **kw))
    found = [s.path for s in folder_sources(root, follow_symlinks=True)]
    assert len(found) == 61 and "link/far.txt" in found
    assert len(calls) <= 2  # the root and the one link: time proportional to the files, not depth cubed
