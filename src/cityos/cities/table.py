"""The list of cities of a batch (``CITIES.csv``): one city per row, checked as a whole.

Columns (UTF-8, a BOM is fine; header names as below, in any order):

============  ==========================================================================
city_id       required; the folder name of the city's outputs: letters, digits, ``_ - .``
name          required; the city's name as people read it (上海市, Helsinki)
adcode        the 6-digit administrative division code (GB/T 2260), empty outside China
osm           the OSM extract (``.osm.pbf``), or ``demo:helsinki`` / ``demo:kouvola``
bundle        an existing bundle to check instead of importing (with the import skipped)
units         ``LEVEL=PATH`` items (or a path with a ``level`` column), separated by ``;``
facilities    POI tables or layers, separated by ``;``
buildings     building footprint layers replacing OSM's, separated by ``;``
registers     ``NAME=PATH`` register tables, separated by ``;``
population    the city's resident total, to calibrate the building estimates to
options       ``key=value`` items separated by ``;`` (see :data:`OPTION_KEYS`)
============  ==========================================================================

Relative paths are relative to the folder of ``CITIES.csv``. Every problem of the file is found
before anything runs and reported together in one line, each with its row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityos.errors import InputError, InputFileNotFoundError
from cityos.provenance import sha256_file
from cityos.sources.cityfiles import UNIT_LEVEL_ALIASES
from cityos.sources.demo import DEMO_CITIES, demo_osm_path

__all__ = ["COLUMNS", "OPTION_KEYS", "STEPS", "City", "city_from_mapping", "read_cities"]

#: The steps of one city's task, in order.
STEPS = ("import", "checkup", "renew", "report")

COLUMNS = ("city_id", "name", "adcode", "osm", "bundle", "units", "facilities", "buildings",
           "registers", "population", "options")  # fmt: skip

#: Per-city options → what they set (the same as the single-city commands' options).
OPTION_KEYS: dict[str, str] = {
    "systems": "indicator systems, comma-separated built-in ids or TOML paths (checkup --system)",
    "cutoff": "walking-distance search limit in m (checkup --cutoff)",
    "distance": "network or euclidean for every coverage indicator (checkup --distance)",
    "area_per_person": "floor area per resident in m² (checkup --area-per-person)",
    "country": "admin_level table for OSM units, e.g. cn (checkup --country)",
    "clip_units": "true to leave out units without data (checkup --clip-units)",
    "policy": "policy numbers TOML (checkup --policy)",
    "weights": "renewal weights TOML (renew --weights)",
    "lang": "zh or en for the report (report --lang)",
    "crs": "CRS of the city files' coordinates: EPSG code, gcj02 or bd09 (import --crs)",
    "measure_crs": "projected CRS in metres (import --measure-crs)",
    "as_of": "date the data describe, YYYY-MM-DD (import --as-of)",
    "levels_default": "storeys assumed without levels or height (import --levels-default)",
    "skip": "steps to skip for this city, comma-separated (import, checkup, renew, report)",
}
#: options whose value is a path (made absolute against the CSV's folder)
_PATH_OPTIONS = {"policy", "weights"}
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_ADCODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class City:
    """One row of ``CITIES.csv``, its paths absolute and its options parsed."""

    city_id: str
    name: str
    adcode: str | None = None
    osm: Path | None = None
    bundle: Path | None = None
    units: tuple[tuple[str | None, Path], ...] = ()
    facilities: tuple[Path, ...] = ()
    buildings: tuple[Path, ...] = ()
    registers: tuple[tuple[str, Path], ...] = ()
    population: float | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    row: int = 0

    def input_files(self) -> list[Path]:
        """The files this city's results depend on (hashed for ``--resume``)."""
        files: list[Path] = [p for p in (self.osm,) if p is not None]
        files += [p for _, p in self.units] + list(self.facilities) + list(self.buildings)
        files += [p for _, p in self.registers]
        files += [Path(self.options[k]) for k in sorted(_PATH_OPTIONS) if k in self.options]
        files += [Path(s) for s in self.systems() if s.endswith(".toml")]
        if self.bundle is not None:  # a bundle made elsewhere: its manifest names its sources
            files.append(self.bundle / "manifest.json")
        return files

    def systems(self) -> list[str]:
        """The systems named by the ``systems`` option (empty: the batch's)."""
        return [s.strip() for s in self.options.get("systems", "").split(",") if s.strip()]

    def skipped(self) -> set[str]:
        """Steps this row skips (``skip`` option)."""
        return {s.strip() for s in self.options.get("skip", "").split(",") if s.strip()}

    def extract_bytes(self) -> int:
        """Size of the OSM extract (or of the bundle's buildings), the measure of the city's
        work and memory; 0 when unknown."""
        for p in (self.osm, self.bundle / "buildings.parquet" if self.bundle else None):
            if p is not None and p.is_file():
                return p.stat().st_size
        return 0


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _path(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else (base / p)


class _Row:
    """The checks of one row; every problem is collected, none stops the others."""

    def __init__(self, line: int, cells: Mapping[str, str], base: Path) -> None:
        self.line = line
        self.cells = cells
        self.base = base
        self.problems: list[str] = []

    def bad(self, text: str) -> None:
        who = self.cells.get("city_id", "").strip()
        self.problems.append(f"row {self.line}{f' ({who})' if who else ''}: {text}")

    def file(self, column: str, text: str, *, folder: bool = False) -> Path:
        p = _path(text, self.base)
        ok = p.is_dir() if folder else p.is_file()
        if not ok:
            self.bad(f"{column} {text!r}: no such {'folder' if folder else 'file'} ({p})")
        return p

    def city(self) -> City | None:
        c = {k: (v or "").strip() for k, v in self.cells.items()}
        city_id, name = c.get("city_id", ""), c.get("name", "")
        if not _ID.match(city_id):
            self.bad(f"city_id {city_id!r}: use 1–64 letters, digits, '_', '-' or '.' (not first)")
        if not name:
            self.bad("name is empty; give the city's name")
        adcode = c.get("adcode") or None
        if adcode is not None and not _ADCODE.match(adcode):
            self.bad(f"adcode {adcode!r}: a 6-digit division code (GB/T 2260), or leave it empty")
        options = self.options(c.get("options", ""))
        skip = {s.strip() for s in options.get("skip", "").split(",") if s.strip()}
        osm = None
        if c.get("osm"):
            if c["osm"].startswith("demo:"):
                which = c["osm"][5:]
                if which in DEMO_CITIES:
                    osm = demo_osm_path(which)
                else:
                    self.bad(f"osm {c['osm']!r}: the demo extracts are {', '.join(DEMO_CITIES)}")
            else:
                osm = self.file("osm", c["osm"])
        bundle = self.file("bundle", c["bundle"], folder=True) if c.get("bundle") else None
        if osm is None and bundle is None and "import" not in skip and not c.get("buildings"):
            self.bad(
                "neither osm nor buildings: give the OSM extract (or a bundle with skip=import)"
            )
        units = tuple(self.unit(u) for u in _split(c.get("units", "")))
        registers: list[tuple[str, Path]] = []
        for item in _split(c.get("registers", "")):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                self.bad(f"registers {item!r}: use NAME=PATH")
                continue
            registers.append((key.strip(), self.file("registers", value.strip())))
        population = None
        if c.get("population"):
            try:
                population = float(c["population"].replace(",", ""))
                if not population > 0:
                    raise ValueError
            except ValueError:
                self.bad(f"population {c['population']!r}: a positive number of residents")
        if self.problems:
            return None
        return City(
            city_id=city_id, name=name, adcode=adcode, osm=osm, bundle=bundle, units=units,
            facilities=tuple(self.file("facilities", f) for f in _split(c.get("facilities", ""))),
            buildings=tuple(self.file("buildings", f) for f in _split(c.get("buildings", ""))),
            registers=tuple(registers), population=population, options=options, row=self.line,
        )  # fmt: skip

    def unit(self, item: str) -> tuple[str | None, Path]:
        head, sep, tail = item.partition("=")
        if sep and head.strip().lower() in UNIT_LEVEL_ALIASES:
            return UNIT_LEVEL_ALIASES[head.strip().lower()], self.file("units", tail.strip())
        if sep and not _path(item, self.base).exists():
            self.bad(f"units {item!r}: unknown level {head.strip()!r}; use city, subdistrict or "
                     "community")  # fmt: skip
        return None, self.file("units", item)

    def options(self, text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in _split(text):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in OPTION_KEYS:
                self.bad(f"options {item!r}: use key=value with a key of {', '.join(OPTION_KEYS)}")
                continue
            value = value.strip()
            if key in _PATH_OPTIONS:
                value = str(self.file(key, value))
            if key == "systems":
                value = ",".join(
                    str(self.file("systems", s)) if s.endswith(".toml") else s
                    for s in (v.strip() for v in value.split(",")) if s
                )  # fmt: skip
            why = _option_problem(key, value)
            if why:
                self.bad(f"options {key}={value!r}: {why}")
            if key == "skip":
                unknown = sorted({s.strip() for s in value.split(",") if s.strip()} - set(STEPS))
                if unknown:
                    self.bad(f"skip {', '.join(unknown)}: the steps are {', '.join(STEPS)}")
            out[key] = value
        return out


def _option_problem(key: str, value: str) -> str | None:
    """Why an option's value is unusable, or None."""
    if key in ("cutoff", "area_per_person", "levels_default"):
        try:
            ok = float(value) > 0
        except ValueError:
            ok = False
        return None if ok else "a positive number"
    choices = {"distance": ("network", "euclidean"), "lang": ("zh", "en"),
               "clip_units": ("true", "false")}  # fmt: skip
    if key in choices and value.lower() not in choices[key]:
        return f"one of {', '.join(choices[key])}"
    return None


def city_from_mapping(cells: Mapping[str, Any], *, base: Path | None = None, row: int = 0) -> City:
    """One city from a mapping with the columns of ``CITIES.csv`` (for Python callers).

    Raises
    ------
    InputError
        With every problem of the row.
    """
    r = _Row(row, {k: "" if v is None else str(v) for k, v in cells.items()}, base or Path.cwd())
    city = r.city()
    if city is None:
        raise InputError(f"city {cells.get('city_id', '')!r}: {'; '.join(r.problems)}")
    return city


def read_cities(path: str | Path) -> list[City]:
    """Read and check ``CITIES.csv``.

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    InputError
        One line with every problem found: unknown or missing columns, rows whose id is not a
        folder name or repeats another's, missing files, malformed options.
    """
    file = Path(path)
    if not file.is_file():
        raise InputFileNotFoundError(f"{file}: no such file; give the list of cities (CSV)")
    text = file.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    problems: list[str] = []
    missing = [c for c in ("city_id", "name") if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing:
        problems.append(f"missing column {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown column {', '.join(unknown)} (the columns are {', '.join(COLUMNS)})"
        )
    cities: list[City] = []
    seen: dict[str, int] = {}
    if not missing:
        for line, raw in enumerate(reader, start=2):
            cells = {(k or "").strip(): v for k, v in raw.items() if k is not None}
            if not any((v or "").strip() for v in cells.values()):
                continue
            r = _Row(line, cells, file.parent)
            city = r.city()
            problems += r.problems
            if city is None:
                continue
            key = city.city_id.lower()  # folders must differ on case-insensitive disks too
            if key in seen:
                problems.append(f"row {line}: city_id {city.city_id!r} repeats row {seen[key]}")
                continue
            seen[key] = line
            cities.append(city)
        if not cities and not problems:
            problems.append("no cities; add one row per city")
    if problems:
        shown = "; ".join(problems[:20]) + (
            f"; … {len(problems) - 20} more" if len(problems) > 20 else ""
        )
        raise InputError(f"{file}: {len(problems)} problem{'s' * (len(problems) > 1)}: {shown}; "
                         "fix them and run again")  # fmt: skip
    return cities


def digests(files: Iterable[Path], *, threads: int = 4) -> dict[str, str]:
    """SHA-256 of each file, several at a time (hashing releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    unique = sorted({str(p) for p in files})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip(unique, pool.map(lambda p: sha256_file(Path(p)), unique), strict=True))
