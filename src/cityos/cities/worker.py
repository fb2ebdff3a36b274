"""Preloaded into the worker processes of the batch's ``LocalCluster``: they ignore SIGINT.

Ctrl-C in a terminal reaches every process of the foreground group, the cluster's workers too;
the batch (the driver) alone handles it — cancels what is left, records it, closes the cluster,
which ends the workers — instead of each worker printing its own traceback.
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: runs in the worker process's main thread at start-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
