"""Options and parameter types shared by the commands, so that one meaning has one name, one
range check and one default (taken from the constant the code defines) everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "NAME",
    "POSITIVE",
    "POSITIVE_INT",
    "NamedPath",
    "cutoff_option",
    "distance_option",
    "force_option",
    "out_option",
    "population_options",
    "quiet_option",
    "systems_option",
    "systems_or_default",
]

F = TypeVar("F", bound=Callable[..., Any])

#: a number > 0 (metres, seconds, people, m² per person)
POSITIVE = click.FloatRange(min=0, min_open=True)
#: a count ≥ 1
POSITIVE_INT = click.IntRange(min=1)
#: a register name: letters, digits, '_' or '-'
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


class NamedPath(click.ParamType):  # type: ignore[type-arg]
    """``NAME=PATH`` (``--register``) or ``[LEVEL=]PATH`` (``--units``) as ``(name, Path)``.

    ``choices`` maps the accepted names (aliases included) to what they mean; without it a name
    must match :data:`NAME`. ``optional`` lets a bare ``PATH`` through as ``(None, Path)``.
    """

    name = "NAME=PATH"

    def __init__(
        self, *, choices: dict[str, str] | None = None, optional: bool = False, metavar: str = ""
    ) -> None:
        self.choices = choices
        self.optional = optional
        self.metavar = metavar or ("[LEVEL=]PATH" if optional else "NAME=PATH")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str | None, Path]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        head, sep, tail = text.partition("=")
        if not sep or Path(text).exists():
            if self.optional:
                return None, Path(text)
            self.fail(f"{text!r}: use {self.metavar}", param, ctx)
        if not head or not tail:
            self.fail(f"{text!r}: use {self.metavar}", param, ctx)
        if self.choices is not None:
            if head.strip().lower() not in self.choices:
                known = ", ".join(sorted(set(self.choices.values())))
                self.fail(
                    f"{text!r}: unknown level {head!r}; use {known} (or 城区/街道/社区), "
                    f"e.g. subdistrict={tail}",
                    param,
                    ctx,
                )
        elif not NAME.fullmatch(head):
            self.fail(
                f"{text!r}: the name {head!r} may use letters, digits, '_' or '-'", param, ctx
            )
        return head.strip(), Path(tail)


def quiet_option(f: F) -> F:
    """``--quiet`` / ``-q``: no progress display (warnings and errors are still shown)."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress display.")(f)


def force_option(what: str) -> Callable[[F], F]:
    """``--force``: replace ``what`` only if cityos wrote it (same kind of output)."""
    return click.option(
        "--force", is_flag=True, help=f"Replace {what} if it is cityos output of the same kind."
    )


def out_option(what: str, *, required: bool = True) -> Callable[[F], F]:
    """``--out`` / ``-o``: the path to write."""
    return click.option(
        "--out", "-o", required=required, type=click.Path(path_type=Path), help=what
    )


def distance_option(default: str | None = "network", help: str = "") -> Callable[[F], F]:
    """``--distance network|euclidean``: along the walkable streets or in a straight line."""
    return click.option(
        "--distance",
        type=click.Choice(["network", "euclidean"]),
        default=default,
        show_default=default is not None,
        help=help or "Walking distance along the streets, or straight line.",
    )


def cutoff_option(f: F) -> F:
    """``--cutoff``: the walking-distance search limit in metres."""
    from cityos.network.access import DEFAULT_CUTOFF_M

    return click.option(
        "--cutoff",
        type=POSITIVE,
        default=DEFAULT_CUTOFF_M,
        show_default=True,
        help="Search limit for walking distances (m).",
    )(f)


def population_options(f: F) -> F:
    """``--area-per-person``, ``--country`` and ``--city-population``: the population estimate."""
    from cityos.population import DEFAULT_AREA_PER_PERSON_M2

    for option in reversed(
        [
            click.option(
                "--area-per-person",
                type=POSITIVE,
                default=DEFAULT_AREA_PER_PERSON_M2,
                show_default=True,
                help="Floor area per resident (m²) for the population estimate; an unconfirmed default.",
            ),
            click.option(
                "--country", help="OSM admin_level table for units from OSM boundaries (cn, fi)."
            ),
            click.option(
                "--city-population",
                type=POSITIVE,
                help="Calibrate the population estimate to this city total.",
            ),
        ]
    ):
        f = option(f)
    return f


def systems_option(help: str) -> Callable[[F], F]:
    """``--system`` (repeatable): built-in indicator system ids or TOML files."""
    return click.option("--system", "systems", multiple=True, help=help)


def systems_or_default(systems: Sequence[str]) -> list[str]:
    from cityos.healthcheck.catalogue import BUILTIN_SYSTEMS

    return list(systems) or list(BUILTIN_SYSTEMS)
