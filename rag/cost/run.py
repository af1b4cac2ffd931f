"""`rag cost`: measure every architecture and way of feeding passages, interleaved, and report.

One worker process per architecture holds its random-weight model (worker.py); the coordinator
asks them in turn, in a fresh shuffled order each repeat, so a burst of load from other
processes on a shared CPU lands on a random configuration instead of on one architecture's
whole curve. Only one worker computes at a time; the others sleep on their input.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.cost.archs import ARCHS, family, hf_config, resolve
from rag.cost.feeds import MODES, Feed, make_feed, modes_for, window_for
from rag.errors import RagError

OUT_MARKER = "rag-cost.json"
SAMPLES = "samples.jsonl"
DEFAULT_KS = (1, 2, 5, 10, 20)


@dataclass
class CostSettings:
    """What to measure. Checked on creation: a bad value is one RagError line naming the option."""

    archs: tuple[str, ...] = tuple(ARCHS)
    ks: tuple[int, ...] = DEFAULT_KS
    modes: tuple[str, ...] = MODES
    repeats: int = 3
    new_tokens: int = 16
    threads: int = 2
    passage_tokens: int = 200
    question_tokens: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        self.archs = tuple(dict.fromkeys(self.archs))
        self.ks = tuple(sorted(set(int(k) for k in self.ks)))
        self.modes = tuple(dict.fromkeys(self.modes))
        if not self.archs:
            raise RagError("--archs is empty: name at least one architecture")
        if not self.ks or self.ks[0] < 1:
            raise RagError(f"--ks must be whole numbers of at least 1, got {list(self.ks)}")
        if not self.modes or any(m not in MODES for m in self.modes):
            raise RagError(f"--modes must be among {', '.join(MODES)}, got {', '.join(self.modes) or 'nothing'}")
        for name, value, least in (
            ("--repeats", self.repeats, 1),
            ("--new-tokens", self.new_tokens, 2),
            ("--threads", self.threads, 1),
            ("--passage-tokens", self.passage_tokens, 1),
            ("--question-tokens", self.question_tokens, 1),
        ):
            if not isinstance(value, int) or value < least:
                raise RagError(f"{name} must be a whole number of at least {least}, got {value!r}")


@dataclass
class Line:
    """One plotted line: an architecture fed one way, over every k."""

    arch: str
    family: str
    mode: str
    source: str  # the --archs entry: a preset name or a config file
    config: dict[str, Any] = field(repr=False)
    feeds: list[Feed] = field(repr=False)


@dataclass
class CostResult:
    """What `run_cost` wrote, and the summary it wrote into cost.json."""

    out: Path
    files: list[Path]
    summary: dict[str, Any]


def plan(settings: CostSettings) -> list[Line]:
    """The lines to measure and their feeds (token counts only; nothing is built)."""
    lines = []
    for name in settings.archs:
        label, config = resolve(name)
        fam = family(config)
        window = window_for(fam, hf_config(config), settings.new_tokens)
        for mode in modes_for(fam, settings.modes):
            if settings.question_tokens >= window:
                raise RagError(
                    f"--question-tokens {settings.question_tokens} leaves no room in {label}'s {window}-token window"
                )
            feeds = [
                make_feed(
                    label,
                    fam,
                    mode,
                    k,
                    window=window,
                    question_tokens=settings.question_tokens,
                    passage_tokens=settings.passage_tokens,
                )
                for k in settings.ks
            ]
            lines.append(Line(label, fam, mode, name, config, feeds))
    if not lines:
        raise RagError(
            f"--modes {','.join(settings.modes)} applies to none of --archs {','.join(settings.archs)} "
            f"(Fusion-in-Decoder needs an encoder-decoder)"
        )
    sources: dict[str, set[str]] = {}
    for line in lines:
        sources.setdefault(line.arch, set()).add(line.source)
    clash = [arch for arch, names in sources.items() if len(names) > 1]
    if clash:
        raise RagError(f"--archs names {', '.join(sorted(clash))} twice (two config files with the same name?)")
    return lines


def claim_out(out: Path) -> None:
    """Make `out` a folder `rag cost` writes to, or prove it is one (it holds rag-cost.json);
    anything else that is not empty is refused untouched."""
    from rag.outdir import claim_out as claim

    claim(out, "cost")


def default_out() -> Path:
    """cost-out/<YYYYmmdd-HHMMSS> in the current folder: a new folder each run."""
    return Path("cost-out") / datetime.now().strftime("%Y%m%d-%H%M%S")


def run_cost(
    out: Path,
    settings: CostSettings | None = None,
    *,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> CostResult:
    """Measure `settings` (default: every preset, k = 1, 2, 5, 10, 20) and write cost.json,
    cost.md, latency.png and memory.png into `out` (a new folder, or one this command made)."""
    from tqdm import tqdm

    from rag.cost.report import write_reports

    settings = settings or CostSettings()
    say = notify or (lambda message: None)
    lines = plan(settings)  # checks every input before anything is written
    claim_out(out)
    samples_path = out / SAMPLES
    samples_path.write_text("", encoding="utf-8")
    load_before, started = _load(), _now()
    archs = dict((line.arch, line.source) for line in lines)
    say(f"building {len(archs)} models with random weights (one process each, {settings.threads} threads)")
    workers: dict[str, Worker] = {}
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    try:
        for arch, source in archs.items():  # they build their models at the same time
            workers[arch] = Worker(source, settings.threads, settings.seed)
        info = {arch: w.ready() for arch, w in workers.items()}
        jobs = [(line, feed) for line in lines for feed in line.feeds]
        warmups = [(line, line.feeds[0]) for line in lines]
        rng = random.Random(settings.seed)
        order = rng.sample(warmups, len(warmups))
        runs: list[tuple[int, Line, Feed]] = [(-1, line, feed) for line, feed in order]
        for r in range(settings.repeats):
            runs += [(r, line, feed) for line, feed in rng.sample(jobs, len(jobs))]
        with (
            tqdm(total=len(runs), desc="rag cost", unit="run", disable=not progress) as bar,
            samples_path.open("a", encoding="utf-8") as log,
        ):
            for i, (repeat, line, feed) in enumerate(runs):
                bar.set_postfix_str(f"{feed.label} k={feed.k}" + (" (warm-up)" if repeat < 0 else ""))
                sample = workers[line.arch].measure(feed, settings.new_tokens, seed=settings.seed + i)
                if repeat >= 0:
                    results.setdefault((line.arch, line.mode, feed.k), []).append(sample)
                    log.write(json.dumps({"repeat": repeat, "label": feed.label, "k": feed.k, **sample}) + "\n")
                    log.flush()
                bar.update(1)
    finally:
        for w in workers.values():
            w.close()
    load_after = _load()
    context = {"load_before": load_before, "load_after": load_after, "started": started, "finished": _now()}
    summary, files = write_reports(out, settings, lines, info, results, context)
    return CostResult(out, [out / OUT_MARKER, samples_path, *files], summary)


class Worker:
    """A `python -m rag.cost.worker` process holding one model; stderr goes to a temporary file."""

    def __init__(self, arch: str, threads: int, seed: int) -> None:
        self.arch = arch
        self.stderr = tempfile.TemporaryFile()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag.cost.worker", arch, "--threads", str(threads), "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )

    def ready(self) -> dict[str, Any]:
        return self._reply()

    def measure(self, feed: Feed, new_tokens: int, *, seed: int) -> dict[str, Any]:
        self._send({"feed": feed.to_dict(), "new_tokens": new_tokens, "seed": seed})
        return self._reply()["sample"]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.stderr.close()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError:
            raise RagError(f"the {self.arch} worker stopped: {self._last_error()}") from None

    def _reply(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            raise RagError(f"the {self.arch} worker stopped: {self._last_error()}")
        message = json.loads(line)
        if "error" in message:
            raise RagError(f"measuring {self.arch} failed: {message['error']}")
        return message

    def _last_error(self) -> str:
        self.process.wait(timeout=30)
        self.stderr.seek(0)
        lines = [s.strip() for s in self.stderr.read().decode("utf-8", "replace").splitlines() if s.strip()]
        return lines[-1] if lines else f"exit status {self.process.returncode}"


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
