"""The cities of a batch on Dask distributed: one ``client.submit`` per city, biggest first.

As many cities are submitted at a time as the workers have threads (re-read as workers come
and go), the next as one ends: a worker then holds only the city it runs, so a worker that dies
(a city out of memory) takes no queued city with it — the scheduler counts a dead worker against
every task it held. Each city declares the memory its task needs as the ``memory`` resource when
the workers offer one (never more than the largest offer, or it would wait forever). Unexpected
errors are retried
``retries`` times; results are taken as they complete; a worker that dies costs only its task,
which the scheduler runs again elsewhere (up to its ``allowed-failures``, then ``KilledWorker``
and the city is recorded as failed). Interrupted, the pending tasks are cancelled.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
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
    offered = [
        w.get("resources", {}) for w in client.scheduler_info(n_workers=-1)["workers"].values()
    ]
    found = [float(r["memory"]) for r in offered if r.get("memory")]
    return int(max(found)) if found else None


def _threads(client: Client) -> int:
    """Threads of the workers connected now (at least 1, so that a batch waits for workers)."""
    with contextlib.suppress(Exception):
        nthreads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
        return max(1, sum(nthreads.values()))
    return 1


def _record(city: City, future: Any, retries: int) -> dict[str, Any]:
    """A finished task's record, or the record of its failure."""
    from distributed.client import FutureCancelledError

    try:
        record: dict[str, Any] = future.result()
        record["attempts"] = record.get("attempts", 1)
        return record
    except CityTaskError as exc:
        return failed_record(city, exc.step, exc.error, trace=exc.trace, attempts=retries + 1)
    except FutureCancelledError:
        return failed_record(city, "", "the task was cancelled on the cluster")
    except Exception as exc:  # KilledWorker: the workers running it died (out of memory, killed)
        if type(exc).__name__ == "KilledWorker":
            return failed_record(city, "", KILLED)
        return failed_record(city, "", f"{type(exc).__name__}: {' '.join(str(exc).split())}")


KILLED = ("the workers running this city died (out of memory or killed) as many times as the "
          "scheduler allows; give workers more memory (--memory-limit) or run this city alone")  # fmt: skip


def run_on_cluster(
    todo: list[tuple[City, str, dict[str, str]]], settings: Settings, root: Path, retries: int,
    done: Callable[[City, dict[str, Any]], None], display: Display, client: Client,
    needs: dict[str, int],
) -> None:  # fmt: skip
    """Run the cities on ``client``'s cluster, biggest extract first, as many at a time as the
    workers have threads (re-read as workers come and go), calling ``done`` as each ends."""
    from distributed import wait

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
    # smallest first, so pop() takes the biggest; equal sizes in list order
    queue = sorted(reversed(todo), key=lambda t: t[0].extract_bytes())
    running: dict[Any, City] = {}
    try:
        while queue or running:
            while queue and len(running) < _threads(client):
                city, print_, inputs = queue.pop()
                extra: dict[str, Any] = {}
                if cap is not None:  # never above the largest offer, or it would wait forever
                    extra["resources"] = {"memory": min(needs[city.city_id], cap)}
                f = client.submit(
                    run_city, city, settings, str(root), print_, inputs, pure=False,
                    key=f"city-{city.city_id}-{token}", retries=retries, **extra,
                )  # fmt: skip
                running[f] = city
            display.set_running(len(running))
            try:
                finished, _ = wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
            except TimeoutError:
                continue
            for f in finished:
                city = running.pop(f)
                done(city, _record(city, f, retries))
    except BaseException:
        client.cancel(list(running))  # type: ignore[no-untyped-call]
        raise


class _CancelRace(logging.Filter):
    """Drops one error tornado logs after Ctrl-C: distributed's ``sync`` schedules its
    ``cancel`` on the client's loop when a wait is interrupted, and when the interrupt comes
    before the awaited future exists, ``cancel`` raises ``NameError`` (distributed.utils) and
    tornado prints the traceback under the batch's one line. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NameError) or exc.__traceback__ is None:
            return True
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return not (
            last.name == "cancel" and Path(last.filename).parts[-2:] == ("distributed", "utils.py")
        )


@contextlib.contextmanager
def quiet_interrupt() -> Iterator[None]:
    """While the batch talks to its cluster: distributed's Ctrl-C race logged by tornado is
    dropped (:class:`_CancelRace`)."""
    logger = logging.getLogger("tornado.application")
    race = _CancelRace()
    logger.addFilter(race)
    try:
        yield
    finally:
        logger.removeFilter(race)


#: Scheduler and worker settings of the batch's LocalCluster: a batch hands each worker one city
#: at a time, so work stealing has nothing to do, and the event-loop watchdog and the system
#: monitor need not wake 50 and 2 times a second on cores the cities use (measured: the driver's
#: CPU over a 2-worker run of four cities fell from 2.4 s to 1.7 s).
QUIET_CLUSTER = {
    "distributed.scheduler.work-stealing": False,
    "distributed.admin.tick.interval": "100ms",
    "distributed.admin.system-monitor.interval": "2s",
}


def local_cluster(workers: int | None = None, memory_limit: int | None = None,
                  dashboard: str = ":8787") -> Any:  # fmt: skip
    """A ``LocalCluster`` for a batch: ``workers`` processes (default the cores, at most 4) of
    one thread each, each offering its memory limit as the ``memory`` resource the city tasks
    declare (default: 90 % of this machine's memory shared among them)."""
    import dask
    import psutil  # type: ignore[import-untyped]
    from distributed import LocalCluster

    n = workers or max(1, min(os.cpu_count() or 1, 4))
    per = memory_limit or int(psutil.virtual_memory().total * 0.9 / n)
    with dask.config.set(QUIET_CLUSTER):
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n, threads_per_worker=1, processes=True, memory_limit=per,
            resources={"memory": per}, dashboard_address=dashboard, silence_logs=40,
            preload=["cityos.cities.worker"],
        )  # fmt: skip
