"""A process that holds one random-weight model and measures it on request (JSON lines).

One process per architecture keeps each peak-memory figure that architecture's alone, and lets
the coordinator interleave architectures without rebuilding models. Protocol: the worker writes
{"ready": ...} once the model is built, then answers each request line {"feed": ..., "new_tokens":
N, "seed": S} with {"sample": ...} or {"error": "..."}; an empty line or end of input stops it.
Anything libraries print goes to stderr, so stdout carries only the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arch", help="preset name or config .json path")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints from libraries go to stderr

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    import torch

    from rag.bench.system import PeakMemory
    from rag.cost.archs import build_model, count_parameters, resolve
    from rag.cost.feeds import Feed
    from rag.cost.measure import measure

    torch.set_num_threads(args.threads)
    _, config = resolve(args.arch)
    t0 = time.perf_counter()
    model = build_model(config, seed=args.seed)
    send(
        {
            "ready": True,
            "parameters": count_parameters(model),
            "build_s": time.perf_counter() - t0,
            "rss_after_build_mb": PeakMemory.current_mb(),
            "threads": torch.get_num_threads(),
            "attention": getattr(model.config, "_attn_implementation", None),
            "torch": torch.__version__,
        }
    )
    pad = config.get("pad_token_id")
    pad = pad if isinstance(pad, int) else 0
    for line in sys.stdin:
        if not line.strip():
            break
        request = json.loads(line)
        try:
            sample = measure(
                model,
                Feed.from_dict(request["feed"]),
                int(request["new_tokens"]),
                pad_token_id=pad,
                seed=int(request.get("seed", 0)),
            )
            send({"sample": sample.to_dict()})
        except Exception as e:  # reported to the coordinator, which stops the run with it
            send({"error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
