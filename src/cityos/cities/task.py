"""One city's task: import → checkup → renew → report, all or nothing.

The task runs wherever Dask puts it (or in the calling process). It writes into a staging folder
``DIR/.work/<city_id>.<attempt>/`` and, when every step has succeeded, replaces
``DIR/<city_id>/`` with it in one rename, so a city folder is always a complete set from one run
(``bundle/``, ``results/``, ``report.html`` and ``city.json``, the record of that run). A task
that fails or is killed leaves the previous city folder as it was; its staging folder is removed
by the task or, when its process died, by the next batch on that folder.

Errors a user causes (:class:`cityos.errors.CityosError`: a broken extract, a bad option) fail
the city at once: running it again would fail the same way. Any other exception is raised as
:class:`CityTaskError` so the scheduler retries the task.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityos.cities.table import STEPS, City
from cityos.errors import CityosError, InputError

__all__ = [
    "CITY_RECORD",
    "WORK_FOLDER",
    "CityTaskError",
    "Settings",
    "city_outputs",
    "commit_city",
    "failed_record",
    "interrupted_record",
    "run_city",
]

#: The record of a city's run inside its folder.
CITY_RECORD = "city.json"
#: Where tasks stage their outputs inside the batch folder.
WORK_FOLDER = ".work"
#: Warnings kept in a city's record (the first ones; the count is kept too).
MAX_WARNINGS = 50


@dataclass(frozen=True)
class Settings:
    """Batch-wide settings of every city's task (a city's ``options`` override them)."""

    steps: tuple[str, ...] = STEPS
    systems: tuple[str, ...] = ()
    lang: str | None = None
    headline: tuple[str, ...] = ()

    def steps_for(self, city: City) -> list[str]:
        """The steps this city runs: the batch's, less those its row skips."""
        return [s for s in STEPS if s in self.steps and s not in city.skipped()]


def failed_record(
    city: City, step: str, error: str, *, trace: str = "", attempts: int = 1
) -> dict[str, Any]:
    """The record of a city that failed at ``step`` with ``error``."""
    return {"city_id": city.city_id, "name": city.name, "adcode": city.adcode, "status": "failed",
            "step": step, "error": error, "traceback": trace, "attempts": attempts,
            "durations_s": {}}  # fmt: skip


def interrupted_record(city: City) -> dict[str, Any]:
    """The record of a city the batch did not finish (Ctrl-C)."""
    return {"city_id": city.city_id, "name": city.name, "adcode": city.adcode,
            "status": "interrupted", "error": "not finished: the batch was interrupted",
            "durations_s": {}}  # fmt: skip


class CityTaskError(Exception):
    """An unexpected failure of a city's task (retried by the scheduler): which city and step,
    the one-line error and the traceback text (picklable, so it crosses process boundaries)."""

    def __init__(self, city_id: str, step: str, error: str, trace: str) -> None:
        super().__init__(city_id, step, error, trace)
        self.city_id, self.step, self.error, self.trace = city_id, step, error, trace

    def __str__(self) -> str:
        return f"{self.city_id}: {self.step}: {self.error}"


def city_outputs(city: City, steps: list[str]) -> list[str]:
    """The paths (relative to the city folder) the run of ``steps`` leaves, for checking a
    city folder is complete."""
    out = [CITY_RECORD]
    if "import" in steps or city.bundle is None:
        out.append("bundle/manifest.json")
    if "checkup" in steps:
        out += ["results/summary.json", "results/indicators.parquet"]
    if "renew" in steps:
        out.append("results/priorities/priorities.csv")
    if "report" in steps:
        out.append("report.html")
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, CityosError) else f"{type(exc).__name__}: {text}"


def _link(src: str | Path, dst: str | Path) -> None:
    """A hard link of ``src`` at ``dst`` (a plain copy across file systems)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _import(city: City, stage: Path, final: Path, settings: Settings) -> None:
    from cityos.importer import import_city
    from cityos.measure import DEFAULT_LEVELS

    o = city.options
    import_city(
        stage / "bundle", osm=city.osm, units=list(city.units), facilities=list(city.facilities),
        buildings=list(city.buildings), registers=dict(city.registers), crs=o.get("crs"),
        measure_crs=o.get("measure_crs"), as_of=o.get("as_of"),
        levels_default=float(o.get("levels_default", DEFAULT_LEVELS)), quiet=True,
    )  # fmt: skip


def _bundle_path(city: City, stage: Path) -> Path:
    if (stage / "bundle").is_dir():
        return stage / "bundle"
    if city.bundle is not None:
        return city.bundle
    raise InputError(
        f"{city.city_id}: the checkup needs a bundle: the import is skipped and there is none "
        "from an earlier run; run the import or give the row a bundle"
    )


def _checkup(city: City, stage: Path, final: Path, settings: Settings) -> None:
    from cityos.bundle import read_bundle
    from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS, load_system
    from cityos.healthcheck.engine import checkup
    from cityos.healthcheck.policy import load_policy
    from cityos.healthcheck.results import write_results
    from cityos.network.access import DEFAULT_CUTOFF_M
    from cityos.population import DEFAULT_AREA_PER_PERSON_M2
    from cityos.registers.check import read_checked
    from cityos.units import admin_level_table

    o = city.options
    source = _bundle_path(city, stage)
    b = read_bundle(source)
    table = admin_level_table(o["country"]) if o.get("country") else None
    if "import" not in settings.steps_for(city):  # registers of the row join an existing bundle
        for name, path in city.registers:
            b.registers[name] = read_checked(name, path, b, table)
    own = set(b.facilities["category"])
    names = city.systems() or list(settings.systems) or list(BUILTIN_SYSTEMS)
    result = checkup(
        b, systems=[load_system(s, categories=own) for s in names],
        cutoff_m=float(o.get("cutoff", DEFAULT_CUTOFF_M)),
        area_per_person=float(o.get("area_per_person", DEFAULT_AREA_PER_PERSON_M2)),
        admin_levels=table, city_population=city.population, distance=o.get("distance"),
        policy=load_policy(o.get("policy")), clip_units=o.get("clip_units", "").lower() == "true",
    )  # fmt: skip
    # where the bundle will be once the city is committed, not the staging folder
    result.summary["bundle"] = str(final / "bundle" if source.parent == stage else source)
    write_results(result, stage / "results")


def _renew(city: City, stage: Path, final: Path, settings: Settings) -> None:
    from cityos.renewal.priorities import write_priorities

    write_priorities(stage / "results", weights=city.options.get("weights"))


def _report(city: City, stage: Path, final: Path, settings: Settings) -> None:
    from cityos.report import write_report

    write_report(stage / "results", stage / "report.html",
                 lang=city.options.get("lang") or settings.lang)  # fmt: skip


_STEP: dict[str, Callable[[City, Path, Path, Settings], None]] = {
    "import": _import, "checkup": _checkup, "renew": _renew, "report": _report,
}  # fmt: skip
#: the output each step leaves in the city folder (carried over when the step is skipped)
_OUTPUT = {"import": "bundle", "checkup": "results", "report": "report.html"}


def _carry_over(step: str, previous: Path, stage: Path) -> None:
    """A skipped step's output from the city's previous run, linked into the new set."""
    name = _OUTPUT.get(step)
    if name is None or (stage / name).exists():
        return
    src = previous / name
    if src.is_dir():
        shutil.copytree(src, stage / name, copy_function=_link)
    elif src.is_file():
        _link(src, stage / name)


def facts(folder: Path, headline: tuple[str, ...]) -> dict[str, Any]:
    """What a city's outputs say, for ``cities.csv``: status counts, sizes, population and the
    headline indicators at city level (None where not measured)."""
    out: dict[str, Any] = {}
    manifest = folder / "bundle" / "manifest.json"
    if manifest.is_file():
        layers = json.loads(manifest.read_text("utf-8")).get("layers", {})
        out["buildings"] = layers.get("buildings")
        out["facilities"] = layers.get("facilities")
    summary_file = folder / "results" / "summary.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text("utf-8"))
        out["counts"] = summary.get("status_counts", {})
        out["units"] = {lv: u.get("count") for lv, u in summary.get("units", {}).items()}
        ind = pd.read_parquet(folder / "results" / "indicators.parquet",
                              columns=["level", "indicator_id", "value", "status"])  # fmt: skip
        city = ind[ind["level"] == "city"].drop_duplicates("indicator_id")
        by_id = dict(zip(city["indicator_id"], city["value"].astype(float), strict=True))
        out["headline"] = {
            i: (None if pd.isna(by_id.get(i, np.nan)) else by_id[i]) for i in headline
        }
        pop = summary.get("population", {})
        out["population"] = pop.get("total") if isinstance(pop, dict) else None
    return out


class PeakMemory:
    """The highest resident memory of this process and its children (the import's building
    reader) while the block runs, sampled every ``interval`` seconds by a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cityos-peak-memory", daemon=True)

    def _watch(self) -> None:
        import psutil  # type: ignore[import-untyped]

        me = psutil.Process()
        while True:
            with contextlib.suppress(psutil.Error):
                rss = me.memory_info().rss + sum(
                    c.memory_info().rss for c in me.children(recursive=True)
                )
                self.peak = max(self.peak, int(rss))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def commit_city(stage: Path, final: Path) -> None:
    """Put a complete staging folder in place of ``final``: the old set is moved aside first
    and removed only once the new one is in place."""
    if final.exists():
        old = final.parent / WORK_FOLDER / f"{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
        stage.rename(final)
        _clean(old)
    else:
        stage.rename(final)


def run_city(
    city: City, settings: Settings, out: str, fingerprint: str, inputs: dict[str, str]
) -> dict[str, Any]:
    """Run one city's steps and commit its folder; returns the city's record.

    Parameters
    ----------
    city
        The city (a row of ``CITIES.csv``).
    settings
        The batch-wide settings.
    out
        The batch folder (absolute; on a cluster, a path every worker sees).
    fingerprint
        SHA-256 of the inputs and options (kept in ``city.json`` for ``--resume``).
    inputs
        The input files' SHA-256, kept in the record.

    Returns
    -------
    dict
        ``status`` is ``ok``, or ``failed`` with ``step`` and ``error`` for an error the user
        caused (a :class:`cityos.errors.CityosError`).

    Raises
    ------
    CityTaskError
        Any other failure, so that the scheduler retries the task.
    """
    root = Path(out)
    if not root.is_dir():
        raise InputError(
            f"{root}: the batch folder is not visible on {socket.gethostname()}; put it (and the "
            "inputs) on a file system every worker mounts at the same path"
        )
    final = root / city.city_id
    stage = root / WORK_FOLDER / f"{city.city_id}.{uuid.uuid4().hex[:8]}"
    started = time.time()
    steps = settings.steps_for(city)
    record: dict[str, Any] = {
        "city_id": city.city_id, "name": city.name, "adcode": city.adcode, "status": "ok",
        "steps": steps, "fingerprint": fingerprint, "inputs": inputs,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "durations_s": {},
    }  # fmt: skip
    step = ""
    try:
        stage.mkdir(parents=True)
        (stage / "running.json").write_text(json.dumps({"pid": os.getpid(), **record}), "utf-8")
        with warnings.catch_warnings(record=True) as caught, PeakMemory() as memory:
            warnings.simplefilter("always")
            for step in STEPS:
                if step not in steps:
                    _carry_over(step, final, stage)
                    continue
                t0 = time.perf_counter()
                _STEP[step](city, stage, final, settings)
                record["durations_s"][step] = round(time.perf_counter() - t0, 3)
        messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
        record["warnings"] = messages[:MAX_WARNINGS]
        record["warnings_total"] = len(messages)
        record["memory_peak"] = memory.peak
        record.update(facts(stage, settings.headline))
        record["durations_s"]["total"] = round(time.time() - started, 3)
        record["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        (stage / "running.json").unlink()
        (stage / CITY_RECORD).write_text(
            json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8"
        )
        commit_city(stage, final)
        return record
    except CityosError as exc:
        _clean(stage)
        record.update(status="failed", step=step, error=_one_line(exc),
                      error_type=type(exc).__name__)  # fmt: skip
        record["durations_s"]["total"] = round(time.time() - started, 3)
        return record
    except Exception as exc:
        _clean(stage)
        raise CityTaskError(city.city_id, step, _one_line(exc), traceback.format_exc()) from None
    except BaseException:
        _clean(stage)
        raise
