"""Copy a reader `rag train reader` wrote into the package, as the `minilm-reader` preset.

    .venv/bin/python benchmarks/ship_reader.py MODEL_FOLDER

Ships what ONNX Runtime needs (model-int8.onnx, tokenizer.json), rag's record (rag-reader.json:
margin, settings, metrics) and the model card (README.md); refuses if the files exceed 50 MB or
the folder holds no rag-reader.json. Weights committed stay in the history forever: ship the
model that is the one to ship, and rarely again.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "rag" / "readers" / "minilm-reader"
FILES = ("model-int8.onnx", "tokenizer.json", "rag-reader.json", "README.md", "config.json")
LIMIT = 50 * 2**20


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    source = Path(sys.argv[1])
    missing = [f for f in FILES if not (source / f).is_file()]
    if missing:
        sys.exit(f"{source}: missing {', '.join(missing)} (is it a finished `rag train reader` model folder?)")
    size = sum((source / f).stat().st_size for f in FILES)
    if size > LIMIT:
        sys.exit(f"{source}: {size / 2**20:.1f} MB is over the 50 MB the package may carry")
    if TARGET.exists():
        stray = [p.name for p in TARGET.iterdir() if p.name not in FILES]
        if stray:
            sys.exit(f"{TARGET} holds files this script did not ship ({', '.join(stray)}): move them away first")
    TARGET.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copyfile(source / f, TARGET / f)
    print(f"shipped {size / 2**20:.1f} MB to {TARGET}")


if __name__ == "__main__":
    main()
