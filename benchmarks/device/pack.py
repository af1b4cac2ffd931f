"""Pack what a lent GPU machine needs to train rag's models, into .dev/ (git-ignored via
.git/info/exclude): the machine gets the working tree and at most 64 MiB, and has neither
../shared nor the packaged MiniLM.

    .venv/bin/python benchmarks/device/pack.py [--reader-run ~/runs/reader-squad] [--gen-run ~/runs/encdec-squad]

Writes .dev/minilm/ (all-MiniLM-L6-v2 with its weights in fp16: 45 MB instead of 91; widened
back to fp32 there, a rounding of at most 2^-11 relative), .dev/train-v1.0.json.xz (SQuAD's
training set, 5.8 MB), and each run's retrieval.json as a table of distinct passages plus ids
(.dev/*-retrieval.json.xz: 83 MB -> 4 MB), so the runs there train on the very passages the runs
here do. benchmarks/device/part_a_inputs.py adds .dev/part-a.json.xz (dev part A's passages, for
evaluation there). Then unpack.py and train_all.sh (copied next to them) run there:

    echo /.dev/ >> .git/info/exclude      # once
    # move the shipped ONNX files out of the tree for the call (the tree travels too), then:
    device run: LIMIT=450 bash .dev/train_all.sh     (carry: [".dev"])

BENCHMARKS.md ("The whole epoch on a lent GPU") says what one 15-minute lease did with it.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "datasets" / "squad" / "train-v1.0.json"


def compact(src: Path, dst: Path) -> int:
    d = json.loads(src.read_text(encoding="utf-8"))
    texts: dict[str, int] = {}
    ranked = {q: [[doc, texts.setdefault(t, len(texts))] for doc, t in items] for q, items in d["ranked"].items()}
    with lzma.open(dst, "wt", preset=9) as f:
        json.dump({"key": d["key"], "texts": list(texts), "ranked": ranked}, f)
    return len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader-run", type=Path, default=Path.home() / "runs" / "reader-squad")
    parser.add_argument("--gen-run", type=Path, default=Path.home() / "runs" / "encdec-squad")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file, save_file

    from rag.embedders.names import packaged_minilm

    out = ROOT / ".dev"
    ours = {"unpack.py", "train_all.sh", "minilm", "train-v1.0.json.xz", "marker.json", "part-a.json.xz"}
    ours |= {"reader-retrieval.json.xz", "gen-retrieval.json.xz"}
    if out.exists() and any(p.name not in ours for p in out.iterdir()):
        raise SystemExit(f"{out} holds files this script did not make: move it away first")
    (out / "minilm").mkdir(parents=True, exist_ok=True)
    source = packaged_minilm()
    for p in source.iterdir():
        if p.name == "model.safetensors":
            t = load_file(str(p))
            save_file(
                {k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in t.items()},
                str(out / "minilm" / "model.fp16.safetensors"),
            )
        elif p.is_dir():
            shutil.copytree(p, out / "minilm" / p.name, dirs_exist_ok=True)
        elif p.suffix in (".json", ".txt"):
            shutil.copy(p, out / "minilm" / p.name)
    with lzma.open(out / "train-v1.0.json.xz", "wb", preset=9) as f:
        f.write(DATA.read_bytes())
    print("reader passages:", compact(args.reader_run / "retrieval.json", out / "reader-retrieval.json.xz"))
    print("generator passages:", compact(args.gen_run / "retrieval.json", out / "gen-retrieval.json.xz"))
    shutil.copy(args.reader_run / "rag-train.json", out / "marker.json")
    for name in ("unpack.py", "train_all.sh"):
        shutil.copy(Path(__file__).with_name(name), out / name)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB (with the tree, under the 64 MiB a call carries)")


if __name__ == "__main__":
    main()
