"""Finding and loading readers: the shipped minilm-reader, a model folder, or a Hub id.

What is a reader is decided from files alone (no torch): a folder with rag's reader marker or
an ONNX span head, or a transformers config whose architecture ends in "ForQuestionAnswering".
ONNX Runtime runs a folder that has ONNX files (int8 first); anything else runs in PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.answers import ModelNotAvailable
from rag.models.weights import ONNX_INT8, onnx_file, weights_key
from rag.readers.base import MARKER

PACKAGED = Path(__file__).parent / "minilm-reader"
PRESETS = {"minilm-reader": PACKAGED}
BACKENDS = ("onnx", "onnx-fp32", "torch")
# `rag ask`'s default answerer where it is installed: see BENCHMARKS.md ("The encoder-only reader")
# for the held-in F1 and latency beside the generators that decided it.
DEFAULT_READER = "minilm-reader"


def preset_available(name: str) -> bool:
    folder = PRESETS.get(name)
    return folder is not None and onnx_file(folder) is not None


def reader_folder(name: str) -> Path | None:
    """The local folder of `name` if it is a reader (preset, folder, or a Hub id in the cache); else None."""
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return path if _is_reader(path) else None
    if "/" in name and name.count("/") == 1 and not name.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            cached = Path(snapshot_download(name, local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the cache (or no huggingface_hub): not a reader we can see
            return None
        return cached if _is_reader(cached) else None
    return None


def is_reader(name: str) -> bool:
    return reader_folder(name) is not None


def _is_reader(folder: Path) -> bool:
    if (folder / MARKER).is_file() or (folder / ONNX_INT8).is_file():
        return True
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForQuestionAnswering") for a in config.get("architectures") or [])


def settings(folder: Path) -> dict:
    """The folder's rag-reader.json, checked ({} where it has none); one line where it is damaged."""
    from rag.models.record import read_record

    return read_record(folder, MARKER, "reader")


_LOADED: dict[tuple, object] = {}


def _onnxruntime_usable() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or a broken build
        return False
    return True


def load_reader(name: str, *, backend: str | None = None, threads: int | None = None):
    """A ready SpanReader; ONNX Runtime when the folder has ONNX files (or `backend` says so), else PyTorch."""
    from rag.readers.reader import SpanReader

    key = (name, backend, threads)
    if key in _LOADED:
        return _LOADED[key]
    folder = reader_folder(name)
    if folder is None or not folder.is_dir():
        if name in PRESETS:
            raise ModelNotAvailable(
                f"Reader '{name}' is not installed with this copy of rag ({folder} is missing): "
                "reinstall rag, or train one with `rag train reader`"
            )
        raise ModelNotAvailable(
            f"'{name}' is not a reader rag can load offline: give a folder holding an "
            "AutoModelForQuestionAnswering model, or a Hub id in the Hugging Face cache"
        )
    info = settings(folder)
    onnx = onnx_file(folder, backend or "onnx") if backend != "torch" else None
    if backend in ("onnx", "onnx-fp32") and onnx is None:
        raise ModelNotAvailable(f"Reader '{name}' has no ONNX file in {folder}: load it with backend='torch'")
    if onnx is not None and backend is None and not _onnxruntime_usable():
        if not any(folder.glob("*.safetensors")):
            raise ModelNotAvailable(
                f"Reader '{name}' needs onnxruntime, which does not import here: pip install onnxruntime"
            )
        onnx = None  # the fallback: the same weights in PyTorch
    try:
        if onnx is not None:
            from tokenizers import Tokenizer

            from rag.readers.backends import OnnxLogits

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            logits = OnnxLogits(onnx, threads)
            pad_id = tokenizer.token_to_id("[PAD]") or 0
        else:
            from transformers import AutoTokenizer

            from rag.readers.backends import TorchLogits

            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            logits = TorchLogits.load(str(folder), threads)
            pad_id = tokenizer.pad_token_id or 0
    except Exception as e:  # noqa: BLE001 - a damaged file (ONNX Runtime and tokenizers raise their own kinds)
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise ModelNotAvailable(
            f"Cannot load reader '{name}' from {folder}: {first} (a damaged or partial copy? reinstall or retrain it)"
        ) from None
    margin = info.get("margin")
    reader = SpanReader(
        name,
        tokenizer,
        logits,
        margin=float("-inf") if margin is None else float(margin),
        max_length=int(info.get("max_length", 384)),
        stride=int(info.get("stride", 128)),
        max_answer_tokens=int(info.get("max_answer_tokens", 30)),
        pad_id=pad_id,
    )
    reader.source = str(folder)
    reader.questions_trained = info.get("questions_trained")
    reader.weights_key = weights_key(folder, onnx, MARKER)
    _LOADED[key] = reader
    return reader


def list_readers() -> list:
    """`rag models` rows for the reader presets (file checks only)."""
    from rag.answers import ENCODER_ONLY
    from rag.models.info import ModelInfo

    rows = []
    for name, folder in PRESETS.items():
        available = preset_available(name)
        try:
            info, damage = settings(folder), ""
        except ModelNotAvailable as e:
            info, damage, available = {}, str(e), False
        held = (info.get("metrics") or {}).get("held_in") or {}
        note = "span reader trained by `rag train reader`, shipped with rag"
        if held.get("gold_f1") is not None:
            note += f" (held-in SQuAD F1 {held['gold_f1']:.2f} on the gold paragraph)"
        if damage:
            note = damage
        elif not available:
            note = "not installed with this copy of rag: train one with `rag train reader`"
        onnx = onnx_file(folder)
        runtime = "onnxruntime " + ("int8" if onnx is not None and onnx.name == ONNX_INT8 else "float32")
        rows.append(
            ModelInfo(
                name,
                ENCODER_ONLY,
                "packaged with rag",
                "22.7M",
                available,
                note,
                "Apache-2.0",
                runtime,
                f"int8 file {onnx.stat().st_size / 2**20:.0f} MiB" if onnx else "",
            )
        )
    return rows


def clear_loaded() -> None:
    _LOADED.clear()
