"""Random damage to every file rag keeps, and what rag makes of it.

Each file is damaged the ways disks and people damage files (a few bytes overwritten in place, one
bit flipped, the file cut short) with a fixed seed, and read back through rag's own reader of it.
Every case must end in one line naming the file and a command that repairs it, or in a correct
result; never in a traceback, and never in a wrong result said as if it were right.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_index import age, build, corpus  # noqa: F401 (corpus: a fixture)
from tiny_models import build_tiny_qa, tiny_towns

from rag.cli import main

SEED = 20261203
KINDS = ("overwrite", "flip", "truncate")


def damage(path: Path, kind: str, rng: random.Random) -> None:
    """Damage `path` in place: a few random bytes overwritten, one bit flipped, or cut short."""
    data = bytearray(path.read_bytes())
    if not data:
        path.write_bytes(b"\x00")
        return
    if kind == "truncate":
        path.write_bytes(bytes(data[: rng.randrange(len(data))]))
        return
    at = rng.randrange(len(data))
    if kind == "flip":
        data[at] ^= 1 << rng.randrange(8)
    else:
        for i in range(at, min(len(data), at + rng.randint(1, 16))):
            old = data[i]
            while data[i] == old:
                data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))


def cli(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result) -> str:
    """The one error line of a failed command (warnings may come before it)."""
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.strip().splitlines() if not line.startswith("warning: ")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    return errors[0]


# --- the index --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, embedder):
    """An index with a base and a delta segment (and its documents), built once."""
    from conftest import write_docs
    from test_index import DOCS  # the corpus fixture's documents

    root = tmp_path_factory.mktemp("fuzz-index")
    docs = write_docs(root / "docs", DOCS)
    age(docs)
    build(docs, root / "idx", embedder)
    (docs / "zz-okapi.md").write_text("Okapis live in the Ituri rainforest of Congo.\n", encoding="utf-8")
    age(docs)
    build(docs, root / "idx", embedder)
    return root


def index_files(idx: Path) -> list[Path]:
    from rag import store

    gen = store.gen_dir(idx, max(store.gen_dirs(idx)))
    return sorted(p for p in gen.rglob("*") if p.is_file()) + [idx / store.MARKER]


def test_every_index_file_damaged_is_one_line_or_a_right_answer(pristine, tmp_path):
    rng = random.Random(SEED)
    files = [p.relative_to(pristine / "idx") for p in index_files(pristine / "idx")]
    assert len(files) >= 10
    for rel in files:
        for kind in KINDS:
            idx = tmp_path / "idx"
            shutil.rmtree(idx, ignore_errors=True)
            shutil.copytree(pristine / "idx", idx)
            damage(idx / rel, kind, rng)
            case = f"{rel} ({kind})"
            found = cli("search", "Where do okapis live?", "-k", "1", "--index", idx, "--retriever", "hybrid")
            if found.exit_code == 0:
                assert "zz-okapi.md" in found.output, case  # a right answer, not a wrong one
            else:
                line = error_line(found)
                assert rel.name in line and "rag index" in line, (case, line)
            checked = cli("info", "--index", idx, "--check")
            if rel.name == "rag-index.json" and checked.exit_code == 0:
                continue  # the index folder's marker: written again where the folder is provably rag's
            # the report, then a `damaged:` line per file, then one error line with the repair
            assert checked.exit_code == 1 and "Traceback" not in checked.output, (case, checked.output)
            said = [line for line in checked.output.splitlines() if rel.name in line]
            assert said and "rag index" in checked.output.strip().splitlines()[-1], (case, checked.output)
    repaired = cli("index", pristine / "docs", "--index", idx)  # the last damaged copy: repaired in place
    assert repaired.exit_code == 0, repaired.output
    assert cli("info", "--index", idx, "--check").exit_code == 0


# --- a bench's results ------------------------------------------------------------------------------


def test_results_damaged_are_set_aside_in_one_line_each_and_the_intact_ones_kept(tmp_path):
    from rag.bench.results import JsonlLog

    rng = random.Random(SEED)
    records = [{"id": f"q{i}", "answer": f"answer number {i}", "f1": i / 10} for i in range(10)]
    for case in range(30):
        path = tmp_path / f"case-{case}" / "results.jsonl"
        path.parent.mkdir()
        log = JsonlLog(path, lambda line: None)
        for r in records:
            log.append(r)
        damage(path, KINDS[case % 3], rng)
        said: list[str] = []
        read = JsonlLog(path, said.append).read()
        assert all(r in records for r in read), case  # nothing changed is read as if it were right
        assert all(str(path) in line and "made again" in line for line in said), case
        if len(read) < len(records) and KINDS[case % 3] != "truncate":  # a cut tail is a killed write's
            assert said, case


# --- training checkpoints and model folders' rag files ------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rag.train.data import load_examples
    from rag.train.reader import TrainSettings, train

    root = tmp_path_factory.mktemp("fuzz-run")
    qa = build_tiny_qa(root / "tiny-qa")
    examples = load_examples(tiny_towns(root / "towns.json"))
    settings = TrainSettings(base=str(qa), epochs=2, batch_size=2, lr=1e-3, max_length=64, stride=16)
    train(examples, root / "run", settings, threads=1, progress=False, checkpoint_seconds=0, stop_after=3)
    return root, examples, settings


def test_every_checkpoint_file_damaged_is_one_line_and_the_checkpoint_is_kept(run, tmp_path):
    from conftest import folder_bytes

    from rag.errors import RagError
    from rag.train.reader import CHECKPOINT, train

    root, examples, settings = run
    rng = random.Random(SEED)
    names = sorted(p.name for p in (root / "run" / CHECKPOINT).iterdir())
    assert {"state.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors"} <= set(names)
    for name in names:
        for kind in KINDS:
            out = tmp_path / "run"
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(root / "run", out)
            damage(out / CHECKPOINT / name, kind, rng)
            before = folder_bytes(out)
            with pytest.raises(RagError) as caught:
                train(examples, out, settings, threads=1, progress=False, say=lambda line: None)
            line = str(caught.value)
            assert "\n" not in line and str(out / CHECKPOINT) in line and "move" in line, (name, kind, line)
            assert folder_bytes(out) == before, (name, kind)


def test_a_reader_record_damaged_is_refused_in_one_line_or_read_unchanged(run, tmp_path):
    from rag.generators.base import ModelNotAvailable
    from rag.integrity import seal
    from rag.readers.loading import clear_loaded, load_reader

    root, _, _ = run
    record = seal(
        {"format": "rag-reader", "margin": -2.3528, "max_length": 384, "stride": 128, "max_answer_tokens": 30}
    )
    rng = random.Random(SEED)
    folder = tmp_path / "reader"
    shutil.copytree(root / "tiny-qa", folder)
    for case in range(40):
        path = folder / "rag-reader.json"
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")
        damage(path, KINDS[case % 3], rng)
        clear_loaded()
        try:
            reader = load_reader(str(folder), backend="torch")
        except ModelNotAvailable as e:
            assert "\n" not in str(e) and str(path) in str(e) and "rag train reader" in str(e), case
            continue
        assert (reader.margin, reader.max_length, reader.stride) == (-2.3528, 384, 128), case
