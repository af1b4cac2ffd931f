"""Stops the local Ray cluster rag started when rag's own process dies, however it dies.

`ray.init()` without an address starts a cluster as children of the driver (GCS, raylet, the
dashboard and runtime-env agents, workers). A driver that exits normally shuts it down; one that
is killed leaves some of those running with parent 1. So when rag starts a local cluster it also
starts this watchdog, in its own session, joined to the driver by a pipe: the pipe closes when the
driver dies (SIGKILL included), and the watchdog then stops every process it last saw descending
from the driver (checked by start time, so a reused pid is never hit). A cluster rag joined
(`--ray-address`, $RAY_ADDRESS) is never touched: it has no watchdog.

    python -m rag.ray_watchdog DRIVER_PID      (started by `rag.cluster.connect`, reads stdin)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0


def start(driver: int) -> subprocess.Popen:
    """The watchdog of `driver` (this process): its stdin is the pipe whose end marks the driver's."""
    return subprocess.Popen(
        [sys.executable, "-m", "rag.ray_watchdog", str(driver)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or a kill of the driver's group does not reach it
    )


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, from /proc; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every living process below `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                children.setdefault(info[0], []).append((int(entry), info[1]))
    found: dict[int, int] = {}
    stack = [root]
    while stack:
        for pid, started in children.get(stack.pop(), []):
            if pid not in found:
                found[pid] = started
                stack.append(pid)
    return found


def stop(processes: dict[int, int]) -> None:
    """SIGTERM, then after a grace period SIGKILL, each process still alive with its start time."""
    me = os.getpid()

    def alive() -> list[int]:
        out = []
        for pid, started in processes.items():
            info = _stat(pid)
            if pid != me and info is not None and info[1] == started:
                out.append(pid)
        return out

    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 0.0)):
        for pid in alive():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while wait and alive() and time.monotonic() < deadline:
            time.sleep(0.1)


def watch(driver: int) -> None:
    seen: dict[int, int] = {}
    while True:
        seen.update(descendants(driver))
        ready, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # the pipe closed: the driver is gone
    seen.update(descendants(driver))  # re-parented ones are no longer below it; the snapshot has them
    stop(seen)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
