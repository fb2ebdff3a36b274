"""Progress display for long steps: a rich progress line on stderr, silent when ``quiet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Reporter"]


class Reporter:
    """Shows one line per stage; ``quiet=True`` shows nothing.

    Use ``with reporter.stage("reading OSM", unit="objects") as advance: advance(n)``.
    """

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(
        self, description: str, total: float | None = None, *, unit: str | None = None
    ) -> Iterator[Callable[[float], None]]:
        """A stage with a bar (``total`` known), a running count (``unit``), or a spinner."""
        if self.quiet or total == 0:
            yield lambda _n: None
            return
        columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        elif unit:
            columns.append(TextColumn("{task.completed:,.0f} " + unit))
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: float) -> None:
                bar.advance(task, n)

            yield advance
            if total:
                bar.update(task, completed=total)
