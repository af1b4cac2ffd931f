"""Pluggable answer generators: encoder-decoder (T5) and decoder-only (GPT-2, SmolLM2) models
behind one `Generator.generate(question, passages) -> Answer` contract.

Importing this package is cheap (no torch, no transformers); they load with the first model.
"""

from rag.generators.base import (
    DECODER_ONLY,
    ENCODER_DECODER,
    Answer,
    BudgetError,
    BudgetItem,
    Generator,
    ModelNotAvailable,
)
from rag.generators.loading import (
    ModelInfo,
    clear_loaded,
    default_generator_name,
    list_models,
    load_generator,
    resolve,
)
from rag.generators.presets import PRESETS, Preset, cache_dir
from rag.generators.pull import pull_model

__all__ = [
    "Answer",
    "BudgetError",
    "BudgetItem",
    "DECODER_ONLY",
    "ENCODER_DECODER",
    "Generator",
    "ModelInfo",
    "ModelNotAvailable",
    "PRESETS",
    "Preset",
    "cache_dir",
    "clear_loaded",
    "default_generator_name",
    "list_models",
    "load_generator",
    "pull_model",
    "resolve",
]
