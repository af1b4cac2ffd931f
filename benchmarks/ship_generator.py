"""Copy a generator `rag train generator` wrote (its finished model, or a curve point) into the
package as an offline preset's folder, with its weights stored in int8.

    .venv/bin/python benchmarks/ship_generator.py MODEL_FOLDER --name minilm-encdec

Ships what loading needs (model-int8.safetensors, config.json, the tokenizer), rag's record
(rag-generator.json) and the model card (README.md) to rag/generators/<name>/; writes the int8
weights first where the folder has only float32 ones (a curve point). Refuses a folder without
rag-generator.json, files over 30 MB (the project's limit per shipped model) or a target folder
holding files this script did not ship. The preset itself (rag/generators/presets.py: `packaged=`)
and package-data (pyproject.toml) are edited by hand, once. Weights committed stay in the history
forever: ship the model measured to be the one, and rarely again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FILES = ("model-int8.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "rag-generator.json")
OPTIONAL = ("README.md", "generation_config.json", "special_tokens_map.json", "vocab.txt")
LIMIT = 30 * 2**20


def int8_weights(source: Path, work: Path) -> Path:
    """source's model-int8.safetensors, or one written in `work` from its float32 weights."""
    from rag.generators.int8_weights import WEIGHTS, save_int8
    from rag.generators.minilm import model_class

    if (source / WEIGHTS).is_file():
        return source / WEIGHTS
    if not (source / "model.safetensors").is_file():
        sys.exit(f"{source}: no weights (model.safetensors or {WEIGHTS})")
    record = json.loads((source / "rag-generator.json").read_text(encoding="utf-8"))
    model = model_class(record["family"], record.get("attention") or "prefix").from_pretrained(str(source))
    save_int8(model, work / WEIGHTS)
    return work / WEIGHTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--name", required=True, help="the preset's folder under rag/generators/")
    parser.add_argument("--target-root", type=Path, default=ROOT / "rag" / "generators", help=argparse.SUPPRESS)
    args = parser.parse_args()
    source = args.model
    if not (source / "rag-generator.json").is_file():
        sys.exit(f"{source}: no rag-generator.json (is it a `rag train generator` model folder?)")
    if not args.name.replace("-", "").isalnum():
        sys.exit(f"--name {args.name!r}: letters, digits and '-' only")
    target = args.target_root / args.name
    if target.exists():
        stray = [p.name for p in target.iterdir() if p.name not in FILES + OPTIONAL]
        if stray:
            sys.exit(f"{target} holds files this script did not ship ({', '.join(stray)}): move them away first")
    with tempfile.TemporaryDirectory() as tmp:
        weights = int8_weights(source, Path(tmp))
        files = {name: source / name for name in FILES + OPTIONAL if (source / name).is_file()}
        files["model-int8.safetensors"] = weights
        missing = [name for name in FILES if name not in files]
        if missing:
            sys.exit(f"{source}: missing {', '.join(missing)}")
        size = sum(p.stat().st_size for p in files.values())
        if size > LIMIT:
            sys.exit(f"{source}: {size / 2**20:.1f} MB is over the 30 MB a shipped model may take")
        target.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            shutil.copyfile(path, target / name)
    print(f"shipped {size / 2**20:.1f} MB to {target}")


if __name__ == "__main__":
    main()
