"""One reading of HF_HUB_OFFLINE for every role, the same as huggingface_hub's."""

import pytest


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        (" 1 ", True),
        ("0", False),
        ("", False),
        ("false", False),
        ("no", False),
    ],
)
def test_offline_reads_hf_hub_offline_as_huggingface_hub_does(monkeypatch, value, expected):
    from huggingface_hub.constants import _is_true

    from rag.models.hub import offline

    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert offline() is expected
    assert _is_true(value.strip()) is expected
