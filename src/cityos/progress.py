"""Progress display for long steps: a rich progress bar on stderr, silent when ``quiet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    """Shows one line per stage with a spinner or bar; ``quiet=True`` shows nothing.

    Use ``with reporter.stage("reading OSM", total=None) as advance: advance(n)``.
    """

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(
        self, description: str, total: float | None = None
    ) -> Iterator[Callable[[float], None]]:
        if self.quiet:
            yield lambda _n: None
            return
        columns = [
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn() if total else TextColumn("{task.completed:,.0f} objects"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: float) -> None:
                bar.advance(task, n)

            yield advance
            if total:
                bar.update(task, completed=total)
