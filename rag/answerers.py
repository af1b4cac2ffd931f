"""Every answerer by name, above both roles: a name is a reader (encoder-only, points at a span)
or a generator (encoder-decoder or decoder-only, writes), and `ask`, `compare`, `bench` and
`rag models` ask here which, load it, list them all and pick the default.

`rag.readers` and `rag.generators` never import each other; what they share (`Answer`, `Span`,
the family names, `ModelNotAvailable`) lives below both, in `rag.answers`. Nothing here imports
torch until a model loads.
"""

from __future__ import annotations

from rag.answers import Answer  # noqa: F401 - what every answerer returns


def is_reader(name: str) -> bool:
    """Whether `name` is a reader (decided from files alone: rag's marker, an ONNX span head, or
    a config whose architecture is a QA head)."""
    from rag.readers.loading import is_reader as reader

    return reader(name)


def load_answerer(name: str, **generator_options):
    """A ready answerer for `name`: a reader where it is one, else a generator (preset, Hub id,
    folder or .gguf; `generator_options` go to `rag.generators.load_generator`). Loaded once."""
    if is_reader(name):
        from rag.readers.loading import load_reader

        return load_reader(name)
    from rag.generators.loading import load_generator

    return load_generator(name, **generator_options)


def clear_loaded() -> None:
    """Forget loaded readers and generators (tests and benchmarks that time loading)."""
    from rag.generators.loading import clear_loaded as clear_generators
    from rag.readers.loading import clear_loaded as clear_readers

    clear_generators()
    clear_readers()


def list_answerers() -> list:
    """`rag models` rows: the reader presets, then the generator presets best first (file checks only)."""
    from rag.generators.loading import list_models
    from rag.readers.loading import list_readers

    return list_readers() + list_models()


def default_answerer_name() -> str:
    """The opt-in qwen2.5-1.5b where it is installed and bfloat16 is native; else the shipped reader
    where it is installed (`rag.readers.loading.DEFAULT_READER`, chosen by measurement); else the
    best generator preset that can load offline now (`rag.generators.default_generator_name`)."""
    from rag.generators.loading import default_generator_name, opted_in_default
    from rag.readers import loading as readers

    # The opt-in 1.5B, where the user installed it and bfloat16 is native, answers better than the
    # reader (F1 0.63 against 0.50) at 3.9 s against 0.15: installing it asked for quality.
    opted_in = opted_in_default()
    if opted_in:
        return opted_in
    if readers.DEFAULT_READER and readers.preset_available(readers.DEFAULT_READER):
        return readers.DEFAULT_READER
    return default_generator_name()
