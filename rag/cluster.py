"""Joining a Ray cluster, for the stages that can run on one (`rag index --ray`, `rag bench
--ray`). Nothing imports ray unless one of those is asked for; Ray is an optional extra."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import RagError

INSTALL = "pip install -e '.[ray]'"
_WATCHDOGS: list = []  # `rag.ray_watchdog` processes of the clusters this process started


@dataclass
class RayOptions:
    """Where and how wide to run. `address` None: $RAY_ADDRESS if set, else a local cluster."""

    address: str | None = None
    workers: int = 2  # actors (embedding, answering) and tasks at once, one CPU each
    ship: bool = False  # the driver reads the files and sends their bytes (a folder only it can see)


def require_ray():
    """Ray, or one line saying how to get it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RagError(f"--ray needs Ray, an optional extra: {INSTALL} (or pip install 'ray[data]')") from None
    return ray


def connect(options: RayOptions):
    """Join the cluster at `options.address` (or $RAY_ADDRESS), else start a local one."""
    ray = require_ray()
    if not ray.is_initialized():
        address = options.address or os.environ.get("RAY_ADDRESS") or None
        kwargs = {} if address else {"num_cpus": max(options.workers, 1), "include_dashboard": False}
        ray.init(address=address, log_to_driver=False, logging_level="ERROR", **kwargs)
        if not address:  # a cluster rag started: stopped with rag, also when rag is killed
            from .ray_watchdog import start

            _WATCHDOGS.append(start(os.getpid()))  # kept: its pipe closing is what says rag died
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "Dataset ... execution finished" lines
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # results in the order of the files: the same chunk ids
    context.enable_progress_bars = False
    return ray
