"""`rag models pull`: make a generator loadable offline (download Hub weights while online, or
convert a GGUF once). Loading itself never downloads (`rag.generators.loading`)."""

from __future__ import annotations

from rag.generators.base import ModelNotAvailable
from rag.generators.loading import (
    GGUF,
    LOCAL,
    ModelSource,
    _first_line,
    convert_gguf,
    resolve,
)
from rag.generators.presets import gguf_converted, hub_cached
from rag.models.logs import quiet_transformers

# Only what loading needs: no TF/Flax/ONNX copies, no duplicate .bin when safetensors exist.
_PULL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]


def pull_model(name: str) -> str:
    """Make `name` loadable offline; return its local path.

    Hub presets and ids are downloaded into the Hugging Face cache; a GGUF (the smollm2 preset,
    or a .gguf path) is converted into rag's cache; a local folder is returned as is.
    """
    source = resolve(name)
    if source.kind == LOCAL:
        return source.location
    if source.kind == GGUF:
        if gguf_converted(source.location) is None:
            with quiet_transformers(progress=True):
                convert_gguf(source.location)
        return str(gguf_converted(source.location) or source.location)
    from huggingface_hub import snapshot_download

    repo = source.location
    if hub_cached(repo):
        return snapshot_download(repo, local_files_only=True)
    _check_hub_reachable(source)
    try:
        patterns = list(_PULL_PATTERNS)
        if not _has_safetensors(repo):
            patterns.append("*.bin")
        return snapshot_download(repo, allow_patterns=patterns)
    except Exception as e:
        raise ModelNotAvailable(f"Could not download '{name}' ({repo}): {_first_line(e)}") from None


def _has_safetensors(repo: str) -> bool:
    from huggingface_hub import HfApi

    return any(f.endswith(".safetensors") for f in HfApi().list_repo_files(repo))


def _check_hub_reachable(source: ModelSource, timeout: float = 3.0) -> None:
    """Fail in seconds, not after huggingface_hub's retries, when there is no network."""
    import socket
    from urllib.parse import urlparse

    from rag.models.hub import offline

    if offline():
        raise ModelNotAvailable(f"Cannot download '{source.name}': HF_HUB_OFFLINE is set; unset it to pull models.")
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as e:
        raise ModelNotAvailable(
            f"Cannot download '{source.name}' ({source.location}): the Hugging Face Hub ({host}) is not reachable: {e}."
        ) from None
