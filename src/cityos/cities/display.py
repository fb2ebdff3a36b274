"""The progress of a batch on the terminal: cities done / running / failed, elapsed and the time
left (estimated from the extract sizes still to do)."""

from __future__ import annotations

from typing import Any

__all__ = ["Display"]


class Display:
    """Cities done / running / failed with elapsed and estimated time (by extract size)."""

    def __init__(self, total_bytes: int, n: int, *, quiet: bool) -> None:
        self.n, self.done, self.failed, self.running = n, 0, 0, 0
        self.quiet = quiet
        self.bar: Any = None
        if quiet or n == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]cities[/] {task.description}"), BarColumn(),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=Console(stderr=True),
        )  # fmt: skip
        self.task = self.bar.add_task(self._text(), total=max(total_bytes, 1))
        self.bar.start()

    def _text(self) -> str:
        return f"{self.done}/{self.n} done · {self.running} running · {self.failed} failed"

    def finished(self, record: dict[str, Any], size: int) -> None:
        self.done += 1
        self.failed += record["status"] == "failed"
        if self.bar is not None:
            self.bar.update(self.task, advance=max(size, 1), description=self._text())

    def set_running(self, n: int) -> None:
        self.running = n
        if self.bar is not None:
            self.bar.update(self.task, description=self._text())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
