"""Many cities in one run (a province, the country): one task per city on Dask distributed, or
one after another without it.

::

    import cityos
    from distributed import Client, LocalCluster

    result = cityos.batch("cities.csv", "province")                  # sequential, this process
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        result = cityos.batch("cities.csv", "province", client=client, resume=True)

The list of cities is :mod:`cityos.cities.table`, one city's task :mod:`cityos.cities.task`, the
run :mod:`cityos.cities.run`, the results across cities :mod:`cityos.cities.combine` and
:mod:`cityos.cities.comparison`.
"""

from __future__ import annotations

from cityos.cities.run import BatchResult, batch, load_batch_settings, memory_need
from cityos.cities.table import STEPS, City, city_from_mapping, read_cities

__all__ = [
    "STEPS",
    "BatchResult",
    "City",
    "batch",
    "city_from_mapping",
    "load_batch_settings",
    "memory_need",
    "read_cities",
]
