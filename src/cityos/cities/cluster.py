"""The cities of a batch on Dask distributed: one ``client.submit`` per city, biggest first.

Each city declares the memory its task needs as the ``memory`` resource when the workers offer
one (never more than the largest offer, or it would wait forever); unexpected errors are retried
``retries`` times; results are taken as they complete; a worker that dies costs only its task,
which the scheduler runs again elsewhere (up to its ``allowed-failures``, then ``KilledWorker``
and the city is recorded as failed). Interrupted, the pending tasks are cancelled.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityos.cities.display import Display
from cityos.cities.table import City
from cityos.cities.task import CityTaskError, Settings, failed_record, run_city
from cityos.errors import CityosWarning

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["local_cluster", "run_on_cluster", "worker_memory"]


def worker_memory(client: Client) -> int | None:
    """The largest ``memory`` resource a worker offers (None: no worker declares one)."""
    offers = [
        w.get("resources", {}).get("memory")
        for w in client.scheduler_info(n_workers=-1)["workers"].values()
    ]
    found = [float(m) for m in offers if m]
    return int(max(found)) if found else None


def run_on_cluster(
    todo: list[tuple[City, str, dict[str, str]]], settings: Settings, root: Path, retries: int,
    done: Callable[[City, dict[str, Any]], None], display: Display, client: Client,
    needs: dict[str, int],
) -> None:  # fmt: skip
    from distributed import wait
    from distributed.client import FutureCancelledError

    cap = worker_memory(client)
    big = [c.city_id for c, _, _ in todo if cap is not None and needs[c.city_id] > cap]
    if big and cap is not None:
        warnings.warn(
            f"{len(big)} cities ({', '.join(big[:5])}{', …' if len(big) > 5 else ''}) need more "
            f"memory than any worker offers ({cap / 2**30:.1f} GiB); they run on the largest and "
            "may run out of memory: give workers more (--memory-limit, --resources memory=…)",
            CityosWarning,
            stacklevel=3,
        )
    token = hashlib.sha256(f"{root}{time.time()}".encode()).hexdigest()[:8]
    futures: dict[Any, City] = {}
    for city, print_, inputs in todo:
        extra: dict[str, Any] = {}
        if cap is not None:  # never more than the largest worker offers, or it would wait forever
            extra["resources"] = {"memory": min(needs[city.city_id], cap)}
        f = client.submit(
            run_city, city, settings, str(root), print_, inputs, key=f"city-{city.city_id}-{token}",
            pure=False, retries=retries, priority=city.extract_bytes(), **extra,
        )  # fmt: skip
        futures[f] = city
    pending = set(futures)
    try:
        while pending:
            try:
                finished, pending = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
            except TimeoutError:
                finished = set()
            for f in finished:
                city = futures[f]
                try:
                    record = f.result()
                    record["attempts"] = record.get("attempts", 1)
                except CityTaskError as exc:
                    record = failed_record(
                        city, exc.step, exc.error, trace=exc.trace, attempts=retries + 1
                    )
                except FutureCancelledError:
                    record = failed_record(city, "", "the task was cancelled on the cluster")
                except Exception as exc:  # KilledWorker: its workers died (out of memory, killed)
                    kind = type(exc).__name__
                    if kind == "KilledWorker":
                        error = ("the workers running this city died (out of memory or killed) as "
                                 "many times as the scheduler allows; give workers more memory "
                                 "(--memory-limit) or run this city alone")  # fmt: skip
                    else:
                        error = f"{kind}: {' '.join(str(exc).split())}"
                    record = failed_record(city, "", error)
                done(city, record)
            with contextlib.suppress(Exception):
                busy: dict[str, list[str]] = client.processing()  # type: ignore[no-untyped-call]
                display.set_running(min(len(pending), sum(len(v) for v in busy.values())))
    except BaseException:
        client.cancel(list(pending))  # type: ignore[no-untyped-call]
        raise


def local_cluster(workers: int | None = None, memory_limit: int | None = None,
                  dashboard: str = ":8787") -> Any:  # fmt: skip
    """A ``LocalCluster`` for a batch: ``workers`` processes (default the cores, at most 4) of
    one thread each, each offering its memory limit as the ``memory`` resource the city tasks
    declare (default: 90 % of this machine's memory shared among them)."""
    import psutil  # type: ignore[import-untyped]
    from distributed import LocalCluster

    n = workers or max(1, min(os.cpu_count() or 1, 4))
    per = memory_limit or int(psutil.virtual_memory().total * 0.9 / n)
    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n, threads_per_worker=1, processes=True, memory_limit=per,
        resources={"memory": per}, dashboard_address=dashboard, silence_logs=40,
    )  # fmt: skip
