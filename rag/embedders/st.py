"""The sentence-transformers backend (`torch`): the reference the ONNX backend is measured against.

Vectors are L2-normalised so that inner product equals cosine similarity.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import DEFAULT_BATCH_SIZE
from ..errors import EmbedderNotAvailable
from .names import canonical_name, model_source


class TorchEmbedder:
    """Loads the model on first use, so building an index with nothing to embed stays cheap."""

    backend = "torch"

    def __init__(self, name: str | None = None, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        self.name = canonical_name(name)
        self.device = device
        self.batch_size = batch_size

    @cached_property
    def model(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights-loading bar on every search is noise

        source = model_source(self.name)
        local = Path(source).expanduser()
        if local.exists():
            return SentenceTransformer(str(local), device=self.device)
        try:
            return SentenceTransformer(source, device=self.device, local_files_only=True)
        except Exception:
            pass
        from ..models.hub import offline

        if offline():
            raise EmbedderNotAvailable(
                f"embedder {self.name!r} is not available offline: give a local folder with --embedder, "
                "or download it once while online (unset HF_HUB_OFFLINE)"
            )
        try:
            return SentenceTransformer(source, device=self.device)
        except Exception as e:
            raise EmbedderNotAvailable(
                f"embedder {self.name!r} could not be loaded ({type(e).__name__}): check the name, "
                "or give a local sentence-transformers folder with --embedder"
            ) from None

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @cached_property
    def dimension(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer chunks would be silently truncated."""
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), each row of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
