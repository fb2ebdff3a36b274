"""Write a folder atomically: into a temporary sibling, renamed into place only when complete."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from cityos.errors import OutputExistsError

__all__ = ["atomic_folder", "write_table"]


@contextmanager
def atomic_folder(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``.

    With ``force=False`` an existing ``target`` is an :class:`OutputExistsError`; with
    ``force=True`` the old folder is removed only after the new one is in place. On any error the
    temporary folder is deleted and ``target`` is left as it was.
    """
    if target.exists() and not force:
        raise OutputExistsError(f"{target}: output folder exists; pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Write ``table`` as CSV (UTF-8 with BOM, so Excel reads Chinese) or Parquet, by the file's
    suffix, through a temporary file renamed into place."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".csv":
            table.to_csv(tmp, index=False, encoding="utf-8-sig")
        else:
            table.to_parquet(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
