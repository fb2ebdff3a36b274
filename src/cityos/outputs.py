"""Where cityos writes, and how: one output check shared by every command, and atomic writes.

``--force`` replaces only what cityos itself wrote before: a folder of the same kind (a bundle
has ``manifest.json``, health-check results ``summary.json`` and ``indicators.parquet``, …) or a
file whose content is the format its suffix names. Everything else is refused with one line: an
output that is or contains an input of the same run, the current folder, a non-empty folder of
another kind, a file of another format. The parent folder must be creatable and writable; it is
checked before the long work starts and created only when writing.

Writes go to a temporary sibling that is renamed into place when complete, so an interrupted or
failing run (an error, Ctrl-C, SIGTERM) leaves the old output as it was and no temporary behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pandas as pd

from cityos.errors import OutputError, OutputExistsError

__all__ = [
    "FOLDER_KINDS",
    "FolderKind",
    "atomic_file",
    "atomic_folder",
    "check_output_file",
    "check_output_folder",
    "files_of",
    "folder_kind",
    "write_table",
]

FolderKind = Literal[
    "bundle", "results", "sites", "priorities", "hotspots", "forms", "stock", "batch"
]

#: The files that make a folder recognisably a cityos output of each kind (all must be present).
FOLDER_KINDS: dict[str, tuple[str, ...]] = {
    "bundle": ("manifest.json",),
    "results": ("summary.json", "indicators.parquet"),
    "sites": ("summary.json", "sites.csv"),
    "priorities": ("priorities.csv",),
    "hotspots": ("hotline_units.csv", "monthly_theme.csv"),
    "forms": ("forms.json",),
    "stock": ("stock.xlsx", "stock.gpkg"),
    "batch": ("batch.json",),
}

_NAMES = {
    "bundle": "city bundle",
    "results": "health-check results folder",
    "sites": "siting folder",
    "priorities": "priorities folder",
    "hotspots": "hotline hotspots folder",
    "forms": "survey forms folder",
    "stock": "stock-taking folder",
    "batch": "batch folder (cityos batch)",
}

#: Leading bytes of each file format cityos writes (text formats: no NUL byte in the first KiB).
_MAGIC = {".parquet": b"PAR1", ".xlsx": b"PK\x03\x04", ".gpkg": b"SQLite format 3\x00"}
_TEXT = {".csv", ".html", ".json", ".toml"}


def folder_kind(path: Path) -> str | None:
    """The kind of cityos output ``path`` holds (``bundle``, ``results``, …), or None."""
    for kind, marks in FOLDER_KINDS.items():
        if all((path / m).is_file() for m in marks):
            return kind
    return None


def files_of(folder: Path) -> list[Path]:
    """Every file under ``folder``: the inputs a command reads from a bundle or results folder."""
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else [folder]


def _is_own_format(path: Path) -> bool:
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError:
        return False
    if suffix in _MAGIC:
        return head.startswith(_MAGIC[suffix])
    if suffix in _TEXT:
        return b"\x00" not in head and (
            suffix != ".html" or head.lstrip().lower().startswith((b"<!doctype html", b"<html"))
        )
    return False


def _resolve(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


def _check_place(target: Path, inputs: Iterable[Path | str | None]) -> Path:
    """Refuse an output at the current folder, at or around an input; check its parent."""
    where = _resolve(target)
    cwd = _resolve(Path.cwd())
    if where == cwd or where in cwd.parents:
        raise OutputError(
            f"{target}: the output would replace the current folder{' or one around it' if where != cwd else ''}; "
            "give --out a new folder name"
        )
    for item in inputs:
        if item is None or str(item) == "":
            continue
        source = _resolve(Path(item))
        if source == where:
            raise OutputError(
                f"{target}: the output is an input of this run; give --out another path"
            )
        if where in source.parents:
            raise OutputError(
                f"{target}: the output folder contains the input {item}; give --out another path"
            )
    parent = where.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"{target}: cannot create the folder: {parent} is a file; choose another --out"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"{target}: {parent} is not writable; choose another --out or fix its permissions"
        )
    return where


def check_output_folder(
    target: Path, kind: FolderKind, *, force: bool, inputs: Sequence[Path | str | None] = ()
) -> None:
    """Check that a ``kind`` folder may be written at ``target``.

    Raises
    ------
    OutputExistsError
        ``target`` is a cityos output of this kind and ``force`` is off.
    OutputError
        ``target`` is the current folder, is or contains an input, is a file, is a non-empty
        folder of another kind, or its parent is not writable.
    """
    _check_place(target, inputs)
    if not target.exists():
        return
    if not target.is_dir():
        raise OutputError(f"{target}: is a file, not a {_NAMES[kind]}; give --out a folder path")
    if not any(target.iterdir()):
        return
    found = folder_kind(target)
    if found != kind:
        what = f"a {_NAMES[found]}" if found else "a folder of other files"
        raise OutputError(
            f"{target}: is {what}, not a {_NAMES[kind]}; --force replaces only cityos' own "
            "output of the same kind: give --out a new folder"
        )
    if not force:
        raise OutputExistsError(f"{target}: {_NAMES[kind]} exists; pass --force to replace it")


def check_output_file(
    target: Path,
    suffixes: Sequence[str],
    *,
    force: bool,
    inputs: Sequence[Path | str | None] = (),
) -> None:
    """Check that a file with one of ``suffixes`` may be written at ``target``.

    Raises
    ------
    OutputExistsError
        ``target`` is a file of the format its suffix names and ``force`` is off.
    OutputError
        The suffix is not one of ``suffixes``; ``target`` is a folder, an input of this run, a
        file of another format; or its parent is not writable.
    """
    if target.suffix.lower() not in suffixes:
        raise OutputError(
            f"{target}: cannot write a {target.suffix or 'suffix-less'} file here; "
            f"name it with {' or '.join(suffixes)}"
        )
    _check_place(target, inputs)
    if not target.exists():
        return
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give --out a file path")
    if not _is_own_format(target):
        raise OutputError(
            f"{target}: exists and is not a {target.suffix} file cityos writes; --force replaces "
            "only cityos' own output: give --out another name"
        )
    if not force:
        raise OutputExistsError(f"{target}: output file exists; pass --force to replace it")


def _temporary(target: Path, what: str) -> Path:
    return target.parent / f".{target.name}.{what}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_folder(
    target: Path,
    *,
    force: bool = False,
    kind: FolderKind | None = None,
    inputs: Sequence[Path | str | None] = (),
) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``.

    With ``kind`` the target is first checked by :func:`check_output_folder`; without, an
    existing ``target`` needs ``force``. The old folder is removed only after the new one is in
    place; on any error or interrupt the temporary folder is deleted and ``target`` left as it was.
    """
    if kind is not None:
        check_output_folder(target, kind, force=force, inputs=inputs)
    elif target.exists() and not force:
        raise OutputExistsError(f"{target}: output folder exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = _temporary(target, "old")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``, renamed onto it when the block succeeds and
    removed when it fails or is interrupted. The parent folder is created."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target, "tmp")
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Write ``table`` as CSV (UTF-8 with BOM, so Excel reads Chinese) or Parquet, by the file's
    suffix, through a temporary file renamed into place."""
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            table.to_parquet(tmp, index=False)
