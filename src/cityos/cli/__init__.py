"""The ``cityos`` command line: ``import`` builds a city bundle and ``info`` shows it, ``access``
measures walking distances, ``checkup`` runs the health check, ``compare`` and ``report`` present
it, ``renew`` ranks units for urban renewal and ``site`` plans new facilities.

This module is the one edge where errors become what a user reads: a
:class:`cityos.errors.CityosError` (and an operating-system error on a path) ends as one line on
stderr and exit status 2; Ctrl-C (SIGINT) at any moment is exit 130 and SIGTERM exit 143, both
without a traceback and with temporary files removed; warnings are printed as
``cityos: warning: …`` lines. It imports nothing heavy itself, so an interrupt during start-up is
caught as well.
"""

from __future__ import annotations

import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any

__all__ = ["main", "run"]


def _terminate(signum: int, _frame: FrameType | None) -> None:
    from cityos.errors import Interrupted

    raise Interrupted(signum)


def _show_warning(message: Warning | str, category: type[Warning], *_a: Any, **_kw: Any) -> None:
    from cityos.errors import CityosWarning

    text = str(message).replace("\n", " ")
    label = "" if issubclass(category, CityosWarning) else f"{category.__name__}: "
    sys.stderr.write(f"cityos: warning: {label}{text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # every distinct warning once, cityos' own or not
            warnings.showwarning = _show_warning
            return _main(argv)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        word = "terminated" if signum == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"cityos: {word}; nothing half-written was left behind\n")
        return 128 + int(signum)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    import click

    from cityos.cli.app import cli
    from cityos.errors import CityosError, CityosWarning

    warnings.simplefilter("always", CityosWarning)
    try:
        status = cli.main(
            args=list(argv) if argv is not None else None, prog_name="cityos", standalone_mode=False
        )
    except CityosError as exc:
        click.echo(f"cityos: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors too: one line, with where to look
        ctx = getattr(exc, "ctx", None)
        hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
        message = " ".join(exc.format_message().split())
        click.echo(f"cityos: error: {message}{hint}", err=True)
        return 2
    except click.Abort as exc:  # click turns Ctrl-C (and our SIGTERM) into Abort
        cause = exc.__cause__
        raise (cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt()) from None
    except OSError as exc:  # a path the operating system refused: one line, never a traceback
        where = exc.filename or "output"
        click.echo(
            f"cityos: error: {where}: {exc.strerror or exc}; check the path, free space and "
            "permissions",
            err=True,
        )
        return 2
    return status if isinstance(status, int) else 0  # an Exit raised by a command comes back here


def run() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
