"""Build throughput on text that is all distinct: SQuAD part A's 913 paragraphs.

`benchmarks/index_throughput.py` replicates the shipped corpus, and since vectors are stored once
per distinct chunk text its build embeds only the ~150 distinct chunks; this one embeds every
chunk it makes (1,133 at the default chunking). Pass the root of a rag checkout, so two commits
can be timed side by side with the same virtual environment:

    .venv/bin/python benchmarks/build_unique.py . ; .venv/bin/python benchmarks/build_unique.py /tmp/other-checkout
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
sys.path.insert(0, str(root))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(2)
import rag  # noqa: E402
from rag.bench.system import _cpu_model  # noqa: E402
from rag.documents import Document  # noqa: E402
from rag.index import Index  # noqa: E402

print("rag from", rag.__file__, "| CPU:", _cpu_model())
squad = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "squad" / "dev-v1.1-part-a.json"
if not squad.is_file():
    sys.exit(f"{squad} is not here: this benchmark needs ../shared/datasets")
data = json.load(open(squad, encoding="utf-8"))
docs = [Document(f"{a['title']}/{i}.txt", p["context"]) for a in data["data"] for i, p in enumerate(a["paragraphs"])]
from rag.embedders import load_embedder  # noqa: E402

emb = load_embedder(None, "onnx-fp32")
emb.encode(["warm up"])
with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    index = Index.build_from_documents(docs, os.path.join(tmp, "idx"), embedder=emb, warn=lambda m: None)
    s = time.perf_counter() - t
    r = index.build_report
    print(f"{r.chunks} chunks, {r.chunks_embedded} embedded in {s:.1f} s: {r.chunks_embedded / s:.1f} chunks/s")
