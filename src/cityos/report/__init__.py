"""Health-check outputs for people: one offline HTML report and the Excel reporting tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from cityos.errors import OutputError
from cityos.outputs import check_output_file, files_of
from cityos.report.excel import write_workbook
from cityos.report.html import write_html

__all__ = ["REPORT_FORMATS", "write_html", "write_report", "write_workbook"]

#: Report format → the file suffix it is written with.
REPORT_FORMATS = {"html": ".html", "xlsx": ".xlsx"}


def write_report(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: Literal["html", "xlsx"] | None = None,
    lang: str | None = None,
    compare: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Write the report of a results folder: HTML (maps, offline) or the Excel tables, by
    ``fmt`` or else the suffix of ``out``; the output is checked first
    (:func:`cityos.outputs.check_output_file`: suffix, not an input, ``force`` for our own).

    Raises
    ------
    OutputError
        ``out``'s suffix does not name a report format or does not match ``fmt``.
    """
    target = Path(out)
    suffix = target.suffix.lower()
    if fmt is None:
        fmt = "html" if suffix == ".html" else "xlsx" if suffix == ".xlsx" else None
        if fmt is None:
            raise OutputError(
                f"{target}: a report is .html or .xlsx; name the file with one of them"
            )
    elif REPORT_FORMATS[fmt] != suffix:
        raise OutputError(
            f"{target}: --format {fmt} writes a {REPORT_FORMATS[fmt]} file; name it "
            f"{target.with_suffix(REPORT_FORMATS[fmt]).name} or drop --format"
        )
    inputs = [*files_of(Path(results)), *(files_of(Path(compare)) if compare else [])]
    check_output_file(target, [REPORT_FORMATS[fmt]], force=force, inputs=inputs)
    if fmt == "xlsx":
        return write_workbook(results, target)
    return write_html(results, target, lang=lang, compare=compare)
