"""Finding and loading rerankers: the shipped minilm-reranker, a model folder, or a Hub id.

What is a cross-encoder is decided from files alone (no torch): a folder with rag's reranker
marker, or a transformers config whose architecture ends in "ForSequenceClassification" with
one label (what sentence-transformers' CrossEncoder saves). ONNX Runtime runs a folder that has
ONNX files (int8 first); anything else runs in PyTorch. A Hub id not in the cache is fetched as
a user online would expect, unless HF_HUB_OFFLINE forbids it; then one line says how to get it.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.answers import ModelNotAvailable
from rag.models.weights import ONNX_INT8, onnx_file, weights_key
from rag.rerankers.base import MARKER

PACKAGED = Path(__file__).parent / "minilm-reranker"
PRESETS = {"minilm-reranker": PACKAGED}
BACKENDS = ("onnx", "onnx-fp32", "torch")


def preset_available(name: str) -> bool:
    folder = PRESETS.get(name)
    return folder is not None and onnx_file(folder) is not None


def is_cross_encoder(folder: Path) -> bool:
    if (folder / MARKER).is_file():
        return True
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 2
    archs = config.get("architectures") or []
    return labels == 1 and any(str(a).endswith("ForSequenceClassification") for a in archs)


def reranker_folder(name: str) -> Path | None:
    """The local folder of `name` (preset, folder, or Hub id, fetched unless offline); else None."""
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        return path if path.is_dir() else None
    from rag.models.hub import offline

    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the cache
        pass
    if offline():
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception:  # noqa: BLE001 - no network, no such model: one line from the caller
        return None


def locate(name: str) -> Path:
    """The folder of reranker `name`, or one line saying why there is none (no torch imported)."""
    folder = reranker_folder(name)
    if name in PRESETS and not preset_available(name):
        raise ModelNotAvailable(
            f"Reranker '{name}' is not installed with this copy of rag ({PRESETS[name]} has no ONNX file): "
            "reinstall rag, or train one with `rag train reranker`"
        )
    if folder is None or not is_cross_encoder(folder):
        raise ModelNotAvailable(
            f"--reranker {name}: not a reranker rag can load: give minilm-reranker, a folder holding a "
            "sentence-transformers CrossEncoder (a one-label sequence classifier), or its Hub id (online)"
        )
    return folder


def default_reranker() -> str | None:
    """The reranker commands use unless told: the configured preset where it is installed."""
    from rag.config import DEFAULT_RERANKER

    return DEFAULT_RERANKER if DEFAULT_RERANKER and preset_available(DEFAULT_RERANKER) else None


def settings(folder: Path) -> dict:
    """The folder's rag-reranker.json, checked ({} where it has none); one line where it is damaged."""
    from rag.models.record import read_record

    return read_record(folder, MARKER, "reranker")


_LOADED: dict[tuple, object] = {}


def load_reranker(name: str, *, backend: str | None = None, threads: int | None = None):
    """A ready CrossEncoderReranker (loaded once per process); ONNX Runtime when the folder has
    ONNX files (or `backend` says so), else PyTorch."""
    from rag.rerankers.cross_encoder import CrossEncoderReranker

    key = (name, backend, threads)
    if key in _LOADED:
        return _LOADED[key]
    if backend is not None and backend not in BACKENDS:
        raise ModelNotAvailable(f"unknown reranker backend {backend!r}: use one of {', '.join(BACKENDS)}")
    folder = locate(name)
    onnx = onnx_file(folder, backend or "onnx") if backend != "torch" else None
    if backend in ("onnx", "onnx-fp32") and onnx is None:
        raise ModelNotAvailable(f"Reranker '{name}' has no ONNX file in {folder}: load it with backend='torch'")
    info = settings(folder)
    try:
        if onnx is not None:
            from tokenizers import Tokenizer

            from rag.rerankers.backends import OnnxScores

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            scores = OnnxScores(onnx, threads)
            pad_id = tokenizer.token_to_id("[PAD]") or 0
        else:
            from transformers import AutoTokenizer

            from rag.rerankers.backends import TorchScores

            hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            tokenizer = hf.backend_tokenizer
            scores = TorchScores.load(str(folder), threads)
            pad_id = hf.pad_token_id or 0
    except Exception as e:  # noqa: BLE001 - a damaged file (ONNX Runtime and tokenizers raise their own kinds)
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise ModelNotAvailable(
            f"Cannot load reranker '{name}' from {folder}: {first} (a damaged or partial copy? reinstall or retrain it)"
        ) from None
    reranker = CrossEncoderReranker(name, tokenizer, scores, int(info.get("max_length", 256)), pad_id)
    reranker.source = str(folder)
    reranker.weights_key = weights_key(folder, onnx, MARKER)
    _LOADED[key] = reranker
    return reranker


def list_rerankers() -> list[tuple[str, str, str]]:
    """`rag models` rows for the reranker presets: (name, runtime and size, note); file checks only."""
    rows = []
    for name, folder in PRESETS.items():
        onnx = onnx_file(folder)
        if onnx is None:
            rows.append((name, "-", "not installed with this copy of rag: train one with `rag train reranker`"))
            continue
        runtime = (
            f"onnxruntime {'int8' if onnx.name == ONNX_INT8 else 'float32'}, {onnx.stat().st_size / 2**20:.0f} MiB"
        )
        try:
            held = (settings(folder).get("metrics") or {}).get("held_in_int8") or {}
        except ModelNotAvailable:
            held = {}  # loading it says what is damaged
        note = "cross-encoder trained by `rag train reranker`, shipped with rag"
        if held:
            note += f" (held-in SQuAD recall@1 {held['retriever']['recall@1']:.3f} -> {held['chosen']['recall@1']:.3f})"
        rows.append((name, runtime, note))
    return rows


def clear_loaded() -> None:
    _LOADED.clear()
