"""`rag index --ray`: the plan and the embed on a Ray cluster, the one writer here. One local
cluster for the module (Ray starts in seconds, not milliseconds); each build is compared with a
local build of the same folder: same chunks, vectors equal within float tolerance, same BM25
statistics, same top-k for every query."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, ROOT
from test_index import age

from rag.errors import RagError
from rag.index import Index

ray = pytest.importorskip("ray", reason="the optional extra rag[ray] is not installed")

QUERIES = ["Which objective is BERT pre-trained with?", "What does cross-attention attend to?", "FAISS inner product"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    fault = tmp_path_factory.mktemp("ray-fault")
    os.environ["RAG_RAY_FAULT_ONCE"] = str(fault)  # read by the workers; armed by one test only
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield fault
    ray.shutdown()
    os.environ.pop("RAG_RAY_FAULT_ONCE", None)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS / "docs", folder)
    age(folder)
    return folder


def ray_options(**kw):
    from rag.build.on_ray import RayOptions

    return RayOptions(**kw)


def contents(index: Index) -> tuple[list[tuple], np.ndarray]:
    """(path, start, end, text) per live chunk, in order, and their vectors."""
    g = index.manifest.generation
    rows = index.db.execute(
        'SELECT c.doc_path, c.start, c."end", c.text, v.vector FROM chunks c JOIN vectors v ON v.sha256 = c.sha256 '
        "WHERE c.gen_added <= ? AND (c.gen_removed IS NULL OR c.gen_removed > ?) ORDER BY c.doc_path, c.start",
        (g, g),
    ).fetchall()
    return [r[:4] for r in rows], np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows])


def assert_same_index(ours: Index, local: Index) -> None:
    rows, vectors = contents(ours)
    local_rows, local_vectors = contents(local)
    assert rows == local_rows and len(rows) > 20
    assert np.allclose(vectors, local_vectors, atol=1e-5)
    for key in ("documents", "chunks", "terms"):
        assert ours.manifest.counts[key] == local.manifest.counts[key], key
    for query in QUERIES:
        for retriever in ("dense", "bm25", "hybrid"):
            got = [(p.doc_path, p.start) for p in ours.search(query, k=5, retriever=retriever)]
            want = [(p.doc_path, p.start) for p in local.search(query, k=5, retriever=retriever)]
            assert got == want, (query, retriever)
    assert ours.verify() == []


@pytest.fixture(scope="module")
def local_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local") / "docs"
    shutil.copytree(CORPUS / "docs", folder)
    return Index.build(folder, folder.parent / "idx", warn=lambda m: None, notify=lambda m: None)


def test_a_ray_build_is_the_local_build_and_updates_with_shipped_bytes(cluster, docs, tmp_path, local_index):
    index = Index.build(docs, tmp_path / "idx", ray=ray_options(workers=2), warn=lambda m: None)
    assert index.build_report.chunks_embedded == len(local_index)
    assert_same_index(index, local_index)
    (docs / "bert.md").write_text("BERT reads in both directions; its objective is masked language modelling.\n")
    again = Index.build(docs, tmp_path / "idx", ray=ray_options(workers=2, ship=True), warn=lambda m: None)
    assert again.build_report.changed == 1 and again.build_report.chunks_embedded == 1
    assert again.build_report.unchanged == len(list(docs.iterdir())) - 1
    assert "masked language modelling" in again.search("BERT objective", k=1, retriever="bm25")[0].text
    assert again.verify() == []


def test_an_actor_killed_mid_build_still_gives_the_same_index(cluster, docs, tmp_path, local_index):
    (cluster / "arm").touch()
    try:
        index = Index.build(docs, tmp_path / "idx", ray=ray_options(workers=2), warn=lambda m: None)
    finally:
        (cluster / "arm").unlink()
    assert (cluster / "died").exists()  # an actor did die, and Ray ran its work again
    assert_same_index(index, local_index)


def test_a_killed_driver_resumes_and_embeds_only_the_rest(cluster, docs, tmp_path, local_index):
    idx = tmp_path / "idx"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from rag.build import embed, ledger
        from rag.build.on_ray import RayOptions
        from rag.index import Index
        embed.EMBED_SLICE, embed.CHECKPOINT_SECONDS = 8, 0.0
        real, calls = ledger.Ledger.store_vectors, []
        def store(self, *args):
            real(self, *args)
            calls.append(1)
            if len(calls) == 3:
                os._exit(9)
        ledger.Ledger.store_vectors = store
        Index.build({str(docs)!r}, {str(idx)!r}, ray=RayOptions(address="auto", workers=2), warn=lambda m: None)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr[-2000:]
    index = Index.build(docs, idx, ray=ray_options(workers=2), warn=lambda m: None)
    assert index.build_report.chunks_embedded == len(local_index) - 3 * 8  # the three stored slices kept
    assert_same_index(index, local_index)


def test_ray_missing_is_one_line_and_touches_nothing(docs, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import rag.cluster as cluster
    from rag.cli import main

    def missing():
        raise RagError(f"--ray needs Ray, an optional extra: {cluster.INSTALL} (or pip install 'ray[data]')")

    monkeypatch.setattr(cluster, "require_ray", missing)
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "q1", "question": "What?", "answers": ["x"], "gold": ["bert.md"]}\n')
    commands = [
        (["index", str(docs), "--index", str(tmp_path / "idx"), "--ray"], tmp_path / "idx"),
        (["bench", str(qa), "--out", str(tmp_path / "out"), "--ray"], tmp_path / "out"),
    ]
    for args, target in commands:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, (args, result.output)
        assert "rag[ray]" in result.output or ".[ray]" in result.output
        assert not target.exists()


def test_require_ray_names_the_extra_when_ray_cannot_be_imported(monkeypatch):
    import builtins

    from rag.cluster import require_ray

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RagError, match=r"--ray needs Ray, an optional extra: pip install -e '\.\[ray\]'"):
        require_ray()


# --- rag bench --ray: answered by actors, written here ---------------------------------------


def test_bench_on_ray_answers_as_a_local_run_and_resumes(cluster, tmp_path, embedder, tiny_t5):
    from conftest import write_qa_set
    from test_bench import DOCS, MISSING, QUESTIONS, config, read_jsonl

    from rag.bench.runner import run_bench

    qa = write_qa_set(tmp_path / "qa", DOCS, QUESTIONS)
    names = [tiny_t5, MISSING]
    local = run_bench(config(qa, tmp_path / "local", embedder, generators=names))
    on_ray = run_bench(config(qa, tmp_path / "ray", embedder, generators=names, ray=ray_options(workers=2)))

    def answers(run):
        return [
            (r["generator"], r["question_id"], r["answer"], r["prompt_key"])
            for r in read_jsonl(run.out / "results.jsonl")
        ]

    assert answers(on_ray) == answers(local) and len(answers(local)) == len(QUESTIONS)
    assert (
        on_ray.errors.keys() == local.errors.keys() == {MISSING}
    )  # a model that cannot load: one reason, no actor left
    sessions = read_jsonl(on_ray.out / "generators.jsonl")
    assert all("Ray actors" in s["memory_method"] and s["load_s"] > 0 for s in sessions)
    again = run_bench(config(qa, tmp_path / "ray", embedder, generators=names, ray=ray_options(workers=1)))
    assert answers(again) == answers(on_ray)  # resumed: every answer kept, none appended


def test_a_killed_driver_leaves_no_process_of_the_cluster_it_started(tmp_path):
    import json
    import signal
    import time

    from rag.ray_watchdog import _stat, descendants

    script = textwrap.dedent(f"""
        import json, os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from rag.cluster import RayOptions, connect
        from rag.ray_watchdog import descendants
        connect(RayOptions(workers=1))
        time.sleep(3)  # the agents start after init returns
        print(json.dumps(descendants(os.getpid())), flush=True)
        time.sleep(600)
    """)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        started = {int(pid): t for pid, t in json.loads(proc.stdout.readline()).items()}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(started) >= 3  # the cluster's processes (and the watchdog)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [pid for pid, t in started.items() if (_stat(pid) or (0, None))[1] == t]
        if not left:
            break
        time.sleep(0.5)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    assert descendants(proc.pid) == {}
