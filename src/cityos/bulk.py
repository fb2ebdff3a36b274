"""Run-time settings for work that makes millions of objects and gigabytes of arrays.

:func:`bulk_work` changes two process-wide settings for the length of a block and restores them:

* **Python's cyclic garbage collector is paused.** Building a million footprints makes a few
  million Python objects (geometries, strings) and no reference cycles; the collector, triggered
  by the allocations, would scan every live object again and again: pausing it makes that work two
  to four times faster (1,000,000 polygons from flat coordinates: 0.26 s paused, 0.5–2.1 s
  collected, ``benchmarks/bench_import.py``). Objects are still freed by reference counting;
  cycles wait for the next collection after the pause.
* **NumPy stops asking the kernel for transparent huge pages** (its ``madvise(MADV_HUGEPAGE)``
  on every array of 4 MiB or more; the ``NUMPY_MADVISE_HUGEPAGE`` setting of NumPy's
  documentation). Where the kernel compacts memory synchronously for such requests
  (``/sys/kernel/mm/transparent_hugepage/defrag`` set to ``madvise``, the Debian default) and its
  free memory is fragmented, as on the 2-core development VM, touching fresh memory is 4–6× slower
  with the advice (300 MB: 0.74–1.09 s against 0.15–0.29 s). The import touches about 1.5 GB of
  fresh arrays. Without the advice a machine that has free huge pages loses little: more page
  faults of 4 KiB, a few tens of milliseconds per gigabyte.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["bulk_work"]


@contextmanager
def bulk_work() -> Iterator[None]:
    """Inside the block: the cyclic collector off and NumPy's huge-page advice off (module notes).

    Re-entrant: each block restores what it found.
    """
    multiarray = _multiarray()
    collecting = gc.isenabled()
    advising = bool(multiarray._get_madvise_hugepage())
    gc.disable()
    multiarray._set_madvise_hugepage(False)
    try:
        yield
    finally:
        multiarray._set_madvise_hugepage(advising)
        if collecting:
            gc.enable()


def _multiarray() -> Any:
    """NumPy's ``multiarray`` module (``numpy.core`` before NumPy 2), which holds the setting."""
    name = (
        "numpy._core.multiarray"
        if int(np.__version__.split(".")[0]) >= 2
        else "numpy.core.multiarray"
    )
    return importlib.import_module(name)
