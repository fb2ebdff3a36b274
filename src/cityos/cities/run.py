"""Run many cities: one task per city on a Dask cluster, or one after another in this process.

:func:`batch` is the whole of ``cityos batch``. It checks the list and the output folder, works
out each city's fingerprint (SHA-256 of its input files, its options, the batch settings and the
cityos version), skips with ``resume`` the cities whose folder holds a complete run of the same
fingerprint, runs the others and writes the results across cities (:mod:`cityos.cities.combine`).

On Dask every city is one ``client.submit`` of :func:`cityos.cities.task.run_city`
(:mod:`cityos.cities.cluster`): biggest extract first, as many at a time as the workers have
threads, ``retries`` for unexpected errors, a declared ``memory`` resource where the workers
offer one, and results taken as they complete. A worker that dies mid-task
costs only that task: the scheduler runs it again elsewhere (up to its ``allowed-failures``,
then the city is recorded as failed), and every finished city is already committed to its
folder. Ctrl-C cancels what is left, records it as interrupted and stops; the finished cities
stay as they are and ``resume`` picks up the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityos.cities.cluster import run_on_cluster
from cityos.cities.display import Display
from cityos.cities.table import STEPS, City, digests, read_cities
from cityos.cities.task import (
    CITY_RECORD,
    WORK_FOLDER,
    CityTaskError,
    Settings,
    city_outputs,
    failed_record,
    interrupted_record,
    run_city,
)
from cityos.errors import (
    ConfigError,
    InputError,
    OutputError,
    OutputExistsError,
)
from cityos.outputs import check_output_folder
from cityos.version import __version__

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "BATCH_RECORD",
    "BatchResult",
    "batch",
    "load_batch_settings",
    "memory_need",
]

#: The batch folder's record: settings, and every city's record of the last run.
BATCH_RECORD = "batch.json"
LOCK = ".batch.lock"


@dataclass(frozen=True)
class BatchResult:
    """What :func:`batch` did: the batch folder and one record per city, in the list's order."""

    out: Path
    records: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        """Cities per status (``ok``, ``failed``, ``interrupted``), ``resumed`` among the ok."""
        out = {"ok": 0, "failed": 0, "interrupted": 0, "resumed": 0}
        for r in self.records:
            out[r["status"]] = out.get(r["status"], 0) + 1
            out["resumed"] += bool(r.get("resumed"))
        return out


def load_batch_settings(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The built-in ``batch.toml`` ([memory] and [headline]), or a city's own copy."""
    from cityos.tomlfiles import read_with_defaults

    data, source = read_with_defaults("cityos.cities", "batch.toml", path, what="batch settings")
    mem = data.get("memory", {})
    try:
        float(mem["base_bytes"]), float(mem["per_extract_byte"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{source}: [memory] needs numbers base_bytes and per_extract_byte"
        ) from exc
    data["source"] = source
    return data


def memory_need(city: City, settings: dict[str, Any]) -> int:
    """Bytes of memory a city's task declares: ``base + per_extract_byte × extract bytes``
    (:file:`batch.toml` [memory], measured by ``benchmarks/bench_batch.py``)."""
    mem = settings["memory"]
    return int(float(mem["base_bytes"]) + float(mem["per_extract_byte"]) * city.extract_bytes())


def fingerprint(city: City, settings: Settings, inputs: dict[str, str]) -> str:
    """SHA-256 of everything a city's outputs depend on: cityos' version, the steps and
    settings, the row (paths, options, population) and the SHA-256 of every input file."""
    doc = {
        "cityos": __version__, "steps": settings.steps_for(city), "systems": settings.systems,
        "lang": settings.lang, "headline": settings.headline, "name": city.name,
        "adcode": city.adcode, "osm": str(city.osm), "bundle": str(city.bundle),
        "units": [[lv, str(p)] for lv, p in city.units],
        "facilities": [str(p) for p in city.facilities],
        "buildings": [str(p) for p in city.buildings],
        "registers": [[n, str(p)] for n, p in city.registers],
        "population": city.population, "options": dict(sorted(city.options.items())),
        "inputs": inputs,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _finished(city: City, settings: Settings, folder: Path, print_: str) -> dict[str, Any] | None:
    """The record in ``folder`` when it holds a complete, successful run of this fingerprint."""
    try:
        record: dict[str, Any] = json.loads((folder / CITY_RECORD).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    complete = (
        record.get("status") == "ok"
        and record.get("fingerprint") == print_
        and all((folder / p).exists() for p in city_outputs(city, settings.steps_for(city)))
    )
    return record if complete else None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the batch folder's lock: a second batch on the same folder is refused."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{root}: another cityos batch is running on this folder; wait for it or give "
                "--out another folder"
            ) from None
        yield


def _recover(root: Path) -> None:
    """Clean up after tasks whose process died: staging folders go; a city set moved aside by a
    commit that was cut between its two renames goes back in place."""
    work = root / WORK_FOLDER
    if not work.is_dir():
        return
    for item in sorted(work.iterdir()):
        name, sep, _ = item.name.partition(".old-")
        if sep and not (root / name).exists():
            item.rename(root / name)
        else:
            shutil.rmtree(item, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def _sequential(
    todo: list[tuple[City, str, dict[str, str]]], settings: Settings, root: Path, retries: int,
    done: Callable[[City, dict[str, Any]], None], display: Display,
) -> None:  # fmt: skip
    for city, print_, inputs in todo:
        display.set_running(1)
        record: dict[str, Any] = {}
        for attempt in range(1, retries + 2):
            try:
                record = run_city(city, settings, str(root), print_, inputs)
                record["attempts"] = attempt
                break
            except CityTaskError as exc:
                if attempt > retries:
                    record = failed_record(
                        city, exc.step, exc.error, trace=exc.trace, attempts=attempt
                    )
        done(city, record)
    display.set_running(0)


def batch(
    cities: str | os.PathLike[str] | Sequence[City],
    out: str | os.PathLike[str],
    client: Client | None = None,
    *,
    steps: Sequence[str] = STEPS,
    systems: Sequence[str] = (),
    lang: str | None = None,
    retries: int = 1,
    resume: bool = False,
    force: bool = False,
    settings_file: str | os.PathLike[str] | None = None,
    compare_report: bool = True,
    quiet: bool = True,
) -> BatchResult:
    """Run the health check for many cities and write the results across them.

    Parameters
    ----------
    cities
        ``CITIES.csv`` (see :mod:`cityos.cities.table`) or a list of :class:`City`.
    out
        The batch folder: ``<city_id>/{bundle,results,report.html,city.json}`` per city, and
        ``all_indicators.parquet``, ``cities.csv``, ``comparison.html``, ``comparison.xlsx``,
        ``batch.json``.
    client
        A ``distributed.Client`` (a ``LocalCluster`` or a running scheduler); None runs the
        cities one after another in this process.
    steps
        The steps to run (default all of :data:`STEPS`); a city's ``skip`` option drops more.
        A skipped step's output is carried over from the city's previous run.
    systems, lang
        Indicator systems (default the three built-in ones) and report language for every city
        that does not set its own.
    retries
        Further attempts of a city after an unexpected error (a user's error, such as a broken
        extract, fails at once).
    resume
        Skip the cities whose folder holds a complete run with the same fingerprint.
    force
        Run every city again in an existing batch folder (each city is replaced only once its
        new set is complete).
    settings_file
        A copy of ``batch.toml`` (memory model, headline indicators).
    compare_report
        Write the comparison report (HTML and XLSX).
    quiet
        No progress display.

    Raises
    ------
    InputError
        A problem of the list of cities (all of them in one message) or of an argument.
    OutputExistsError
        ``out`` holds a batch and neither ``resume`` nor ``force`` is given.
    """
    from cityos.cities.combine import write_combined

    unknown = sorted(set(steps) - set(STEPS))
    if unknown or not steps:
        raise InputError(f"steps {', '.join(unknown) or '(none)'}: choose from {', '.join(STEPS)}")
    if retries < 0:
        raise InputError(f"retries {retries}: give 0 or more")
    rows = read_cities(Path(cities)) if isinstance(cities, str | os.PathLike) else list(cities)
    if not rows:
        raise InputError("no cities to run; give at least one")
    ids = [c.city_id.lower() for c in rows]
    if len(set(ids)) != len(ids):
        raise InputError("two cities share a city_id; every city needs its own")
    conf = load_batch_settings(settings_file)
    settings = Settings(steps=tuple(s for s in STEPS if s in steps), systems=tuple(systems),
                        lang=lang, headline=tuple(conf["headline"]["indicators"]))  # fmt: skip
    root = Path(os.path.abspath(Path(out).expanduser()))
    files = [p for c in rows for p in c.input_files()]
    check_output_folder(root, "batch", force=True, inputs=files)
    if (root / BATCH_RECORD).is_file() and not (resume or force):
        raise OutputExistsError(
            f"{root}: batch folder exists; pass --resume to run only the cities that changed, "
            "failed or are missing, or --force to run every city again"
        )
    with _locked(root):
        _recover(root)
        started = dt.datetime.now(dt.UTC)
        inputs_all = digests(files)
        plan: list[tuple[City, str, dict[str, str]]] = []
        records: dict[str, dict[str, Any]] = {}
        for c in rows:
            inputs = {str(p): inputs_all[str(p)] for p in c.input_files()}
            print_ = fingerprint(c, settings, inputs)
            folder = root / c.city_id
            record = _finished(c, settings, folder, print_) if resume else None
            if record is not None:
                records[c.city_id] = {**record, "resumed": True}
            else:
                plan.append((c, print_, inputs))
        needs = {c.city_id: memory_need(c, conf) for c in rows}
        display = Display(sum(c.extract_bytes() or 1 for c, _, _ in plan), len(plan), quiet=quiet)

        def done(city: City, record: dict[str, Any]) -> None:
            record["memory_request"] = needs[city.city_id]
            record["extract_bytes"] = city.extract_bytes()
            records[city.city_id] = record
            display.finished(record, city.extract_bytes())

        try:
            if client is None:
                _sequential(plan, settings, root, retries, done, display)
            else:
                run_on_cluster(plan, settings, root, retries, done, display, client, needs)
        except BaseException:
            display.close()
            for c in rows:
                records.setdefault(c.city_id, interrupted_record(c))
            _write_record(root, rows, records, settings, conf, started, client)
            if client is None:  # nothing runs any more: clean up whatever the signal cut short
                _recover(root)
            else:
                with contextlib.suppress(OSError):  # empty once the tasks cleaned their staging
                    (root / WORK_FOLDER).rmdir()
            raise
        display.close()
        ordered = [records[c.city_id] for c in rows]
        _write_record(root, rows, records, settings, conf, started, client)
        write_combined(root, rows, ordered, settings, compare_report=compare_report)
        shutil.rmtree(root / WORK_FOLDER, ignore_errors=True)
    return BatchResult(root, ordered)


def _write_record(
    root: Path, rows: Sequence[City], records: dict[str, dict[str, Any]], settings: Settings,
    conf: dict[str, Any], started: dt.datetime, client: Client | None,
) -> None:  # fmt: skip
    from cityos.cities.combine import write_cities_table
    from cityos.outputs import atomic_file

    doc = {
        "cityos": __version__, "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scheduler": "sequential (this process)" if client is None else str(client.scheduler_info()["address"]),
        "settings": {"steps": list(settings.steps), "systems": list(settings.systems) or "built-in",
                     "lang": settings.lang, "headline": list(settings.headline),
                     "memory": conf["memory"], "source": conf["source"]},
        "cities": [records[c.city_id] for c in rows],
    }  # fmt: skip
    with atomic_file(root / BATCH_RECORD) as tmp:
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8")
    write_cities_table(root, [records[c.city_id] for c in rows], settings)
