"""rag's thread policy is set on import, before any native library, and a user's choice wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, os, sys\n"
    "import rag\n"
    "from rag.threads import ort_spinning\n"
    "print(json.dumps({'omp': os.environ.get('OMP_WAIT_POLICY'), 'tokenizers': os.environ.get('TOKENIZERS_PARALLELISM'),"
    " 'spin': ort_spinning(), 'heavy': [m for m in ('torch', 'faiss', 'onnxruntime') if m in sys.modules]}))\n"
)


def probe(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_WAIT_POLICY", "RAG_THREAD_POLICY", "RAG_ORT_SPINNING", "TOKENIZERS_PARALLELISM")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_passive_waiting_is_set_before_any_native_library_is_imported():
    seen = probe()
    assert seen == {"omp": "PASSIVE", "tokenizers": "false", "spin": False, "heavy": []}


@pytest.mark.parametrize(
    "env, omp, spin",
    [
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", True),  # the user's OpenMP choice wins, and ORT follows it
        ({"RAG_ORT_SPINNING": "1"}, "PASSIVE", True),
        ({"RAG_THREAD_POLICY": "default"}, None, True),  # every library's own default
    ],
)
def test_the_users_variables_win(env, omp, spin):
    seen = probe(**env)
    assert seen["omp"] == omp and seen["spin"] is spin


def test_the_onnx_session_follows_the_policy(monkeypatch):
    """The spinning setting reaches ONNX Runtime's session options."""
    ort = pytest.importorskip("onnxruntime")
    from rag.embedders.onnx import OnnxEmbedder

    captured = {}

    class Options(ort.SessionOptions):
        def add_session_config_entry(self, key, value):
            captured[key] = value
            super().add_session_config_entry(key, value)

    monkeypatch.setattr(ort, "SessionOptions", Options)
    monkeypatch.setattr(ort, "InferenceSession", lambda path, options, providers: options)
    embedder = OnnxEmbedder("sentence-transformers/all-MiniLM-L6-v2", "onnx-fp32")
    embedder.__dict__["folder"] = __import__("pathlib").Path("/nonexistent")
    monkeypatch.delenv("RAG_ORT_SPINNING", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    _ = embedder.session
    assert captured == {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
