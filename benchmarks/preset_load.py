"""First use against later loads of the offline GGUF presets, each in a fresh process.

The first load assembles a chunked GGUF (hash-checked) and dequantises it into a safetensors
copy; later loads read that copy. A fresh temporary $RAG_CACHE per preset, so the first load
really is the first. torch and transformers are imported before the clock starts.

    .venv/bin/python benchmarks/preset_load.py [--presets smollm2,gemma3-270m,qwen2.5-0.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = (
    "import sys, time, json\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "import torch, transformers\n"
    "from rag.generators import load_generator\n"
    "t = time.perf_counter(); load_generator(sys.argv[1]); s = time.perf_counter() - t\n"
    "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print(json.dumps({'seconds': s, 'peak_rss_mb': hwm / 1024}))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="smollm2,gemma3-270m,qwen2.5-0.5b")
    args = parser.parse_args()
    for name in [n for n in args.presets.split(",") if n]:
        cache = tempfile.mkdtemp(prefix="rag-load-")
        env = {**os.environ, "RAG_CACHE": cache, "HF_HUB_OFFLINE": "1"}
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", CHILD, name], env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr.strip().splitlines()[-1])
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        shutil.rmtree(cache, ignore_errors=True)
        first, later = runs
        print(
            f"{name:>14}: first {first['seconds']:6.1f} s ({first['peak_rss_mb']:.0f} MB peak), "
            f"later {later['seconds']:5.1f} s ({later['peak_rss_mb']:.0f} MB), later / first {later['seconds'] / first['seconds']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
