"""The build's stages on their own: plain data in and out (it pickles, so a worker elsewhere can
run them), the per-file plan and the settings resolver pure, the per-batch embed the same as
the build's."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import write_docs

from rag.build.embed import embed_batch
from rag.build.plan import FilePlan, plan_one
from rag.build.report import BuildReport
from rag.build.settings import BuildOptions, resolve
from rag.build.sources import Source, document_sources, folder_sources
from rag.documents import Document
from rag.errors import IndexError_, RagError


def settings(**options):
    return resolve(
        BuildOptions(**options), {}, index=None, source="docs", has_generation=False, default_backend="torch"
    )


def test_sources_and_plans_pickle_and_plan_one_is_pure(tmp_path, embedder):
    folder = write_docs(
        tmp_path / "docs", {"a.md": "Encoders read both ways.\n\nDecoders write.\n", "b.bin.txt": b"\x00\x01"}
    )
    sources = list(folder_sources(folder))
    assert [s.path for s in sources] == ["a.md", "b.bin.txt"]
    shipped = pickle.loads(pickle.dumps(sources))  # what a worker on another node would get
    s = settings(chunk_tokens=8, overlap=2)
    first = plan_one(shipped[0], None, s, embedder.tokenizer, seen_ns=1)
    again = plan_one(sources[0], None, s, embedder.tokenizer, seen_ns=1)
    assert first.status == "changed" and first == again and len(first.chunks) >= 2
    assert pickle.loads(pickle.dumps(first)) == first
    assert "".join(c.text for c in first.chunks[:1]).startswith("Encoders")
    binary = plan_one(sources[1], None, s, embedder.tokenizer)
    assert binary.status == "skipped" and "NUL" in binary.reason and binary.chunks == ()
    same = plan_one(sources[0], (first.digest, 0, 0, 0), s, embedder.tokenizer)  # the recorded hash: unchanged
    assert same.status == "same" and same.chunks == ()
    assert sorted(p.name for p in folder.iterdir()) == ["a.md", "b.bin.txt"]  # planning wrote nothing


def test_a_source_that_cannot_be_read_plans_as_skipped_with_its_reason(tmp_path, embedder):
    gone = Source("gone.md", 10, 1, file=str(tmp_path / "gone.md"))
    plan = plan_one(gone, None, settings(), embedder.tokenizer)
    assert plan == FilePlan("gone.md", "skipped", reason="No such file or directory")
    memory = next(iter(document_sources([Document("d.md", "In memory.")])))
    assert plan_one(memory, None, settings(), embedder.tokenizer).status == "changed"


def test_resolve_is_pure_and_names_the_conflicting_option():
    recorded = {
        "embedder": "sentence-transformers/all-MiniLM-L6-v2",
        "chunk_tokens": 200,
        "overlap": 40,
        "index_type": "flat",
        "source": "docs",
        "documents": 3,
        "backend": "onnx-fp32",
    }
    s = resolve(BuildOptions(), recorded, index="idx", source="docs", has_generation=True, default_backend="torch")
    assert (s.backend, s.chunk_tokens, s.overlap, s.rechunk, s.notices) == ("onnx-fp32", 200, 40, False, [])
    s = resolve(
        BuildOptions(chunk_tokens=100, index_type="hnsw"),
        recorded,
        index="idx",
        source="docs",
        has_generation=True,
        default_backend="torch",
    )
    assert s.rechunk and len(s.notices) == 2 and "--chunk-tokens 100" in s.notices[0] and "hnsw" in s.notices[1]
    with pytest.raises(IndexError_, match="holds documents from docs, not other"):
        resolve(BuildOptions(), recorded, index="idx", source="other", has_generation=True, default_backend="torch")
    with pytest.raises(RagError, match="--overlap must be at least 0 and below --chunk-tokens"):
        resolve(
            BuildOptions(chunk_tokens=10, overlap=10),
            {},
            index="idx",
            source="docs",
            has_generation=False,
            default_backend="torch",
        )
    assert pickle.loads(pickle.dumps(s)) == s


def test_embed_batch_gives_the_vectors_and_tokens_a_build_stores(embedder):
    texts = ["Encoders read both ways.", "Decoders write one token at a time."]
    batch = pickle.loads(pickle.dumps(embed_batch(embedder, ["a", "b"], texts)))
    vectors = np.frombuffer(b"".join(batch.vectors), dtype=np.float32).reshape(2, -1)
    assert np.allclose(vectors, embedder.encode(texts), atol=1e-5)
    assert batch.tokens[1][0] == "decod" and batch.shas == ["a", "b"]
    assert pickle.loads(pickle.dumps(BuildReport(added=1))).added == 1
