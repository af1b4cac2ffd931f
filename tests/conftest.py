"""Shared fixtures: the real packaged embedder (loaded once), small document folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Generators compute in float32 in tests whatever the CPU, so every machine checks the same
# numbers; tests/test_dtype.py checks the per-CPU choice and the bfloat16 path on their own.
os.environ.setdefault("RAG_DTYPE", "float32")
# Likewise training runs in float32 (no bf16 autocast on CPUs that have it); tests/test_train_device.py
# checks the per-CPU choice and a bf16 run.
os.environ.setdefault("RAG_TRAIN_PRECISION", "fp32")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "encoder-roles"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def embedder():
    from rag.embedders.st import TorchEmbedder

    emb = TorchEmbedder()
    _ = emb.model  # load once for the whole session
    return emb


def write_docs(folder: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def write_qa_set(root: Path, docs: dict[str, str | bytes], questions: list[dict]) -> Path:
    """A QA set in the project's format: `docs/` and a qa.jsonl beside it (whose path is returned)."""
    import json

    write_docs(root / "docs", docs)
    path = root / "qa.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return path


def folder_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file under `folder` (relative path -> content): to show an index was left untouched."""
    return {f.relative_to(folder): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF whose text layer holds `lines` (no PDF library needed)."""
    text_ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text_ops.append(f"({escaped}) Tj T*")
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder):
    """The shipped corpus, indexed once per test session with the default settings."""
    from rag.index import Index

    return Index.build(
        CORPUS / "docs", tmp_path_factory.mktemp("corpus") / "idx", embedder=embedder, warn=lambda m: None
    )


@pytest.fixture(scope="session")
def qa_items() -> list[dict]:
    import json

    return [json.loads(line) for line in (CORPUS / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> str:
    """A tiny random-weight encoder-decoder (T5 config) saved to a folder, loaded by path like a user's."""
    from tiny_models import build_tiny_t5

    return str(build_tiny_t5(tmp_path_factory.mktemp("models") / "tiny-t5"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> str:
    """A tiny random-weight decoder-only model (GPT-2 config) saved to a folder."""
    from tiny_models import build_tiny_gpt2

    return str(build_tiny_gpt2(tmp_path_factory.mktemp("models") / "tiny-gpt2"))


@pytest.fixture(params=["delta", "merge", "merge-2"])
def merge_policy(request, monkeypatch) -> str:
    """Run a test each way an update can write a generation: into the delta segment (never
    merging), merged into a new base (always merging), and merged into base segments of at most
    two chunks (so merges link, rewrite, drop and append segments); see rag/segments.py."""
    from rag import segments

    monkeypatch.setattr(segments, "MERGE_FRACTION", 1e9 if request.param == "delta" else 0.0)
    if request.param == "merge-2":
        monkeypatch.setattr(segments, "SEGMENT_CHUNKS", 2)
    return request.param


class HashEmbedder:
    """A stand-in embedder for tests that need many chunks fast: words as tokens, unit vectors
    from a hash of the text (similar texts are not similar vectors: for storage tests only)."""

    name = "stand-in/hash-32"
    dimension = 32
    max_tokens = 10**6

    class _Words:
        def __call__(self, text, **kwargs):
            import re

            return {"offset_mapping": [m.span() for m in re.finditer(r"\S+", text)]}

    tokenizer = _Words()

    def encode(self, texts, show_progress=False):
        import hashlib

        import numpy as np

        out = (
            np.stack(
                [
                    np.random.default_rng(
                        int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                    ).standard_normal(self.dimension)
                    for t in texts
                ]
            )
            if texts
            else np.zeros((0, self.dimension))
        )
        return (
            (out / np.linalg.norm(out, axis=1, keepdims=True)).astype("float32")
            if len(texts)
            else out.astype("float32")
        )


@pytest.fixture
def hash_embedder():
    from rag.embedders.st import TorchEmbedder

    return type("HashEmbedderStandIn", (HashEmbedder, TorchEmbedder), {"__init__": lambda self: None})()


class Counting:
    """Loads generators as `rag bench` would, and counts generate() calls per generator (which
    answers were made anew rather than resumed)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, name: str):
        from rag.generators import load_generator

        counter, inner = self, load_generator(name)

        class Wrapped:
            def __getattr__(self, attr):
                return getattr(inner, attr)

            def generate(self, question, passages, **kwargs):
                counter.calls[name] = counter.calls.get(name, 0) + 1
                return inner.generate(question, passages, **kwargs)

        return Wrapped()
