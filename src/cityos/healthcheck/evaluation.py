"""What a health-check method returns (:class:`Evaluation`) and the helpers every method
shares: the levels an indicator is reported at, and "unmeasured" for absent categories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from cityos.healthcheck.context import UNIT_LEVEL_ORDER, CheckupContext

if TYPE_CHECKING:
    from cityos.healthcheck.catalogue import Indicator

__all__ = ["Evaluation", "levels_for", "unmeasured"]


@dataclass
class Evaluation:
    """What a method found for one indicator (see the module docstring).

    ``bound``: where ``unknown`` > 0 the value is a lower bound of the true figure (unmeasured
    parts could only add to it); ``unit_keyed``: the values come from the city's own table keyed
    by unit, so they stand even for units without buildings.
    """

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    method: str = ""
    radius_m: float | None = None
    note: str = ""
    no_data: str | None = None
    bound: bool = False
    unknown_what: str = ""
    uncovered: pd.Series | None = (
        None  # per building, listed in the problem list: a resident not reached (coverage), a flagged building (register)
    )
    population_based: bool = False
    unit_keyed: bool = False
    denominator_kind: str = ""  # "residents" where the denominator counts residents


def levels_for(indicator: Indicator) -> list[str]:
    """The unit levels an indicator is reported at: its own and every level above it (a housing
    indicator is counted per community, subdistrict and city)."""
    start = (
        0
        if indicator.level in ("housing", "community")
        else UNIT_LEVEL_ORDER.index(indicator.level)
    )
    return list(UNIT_LEVEL_ORDER[start:])


def _absent(cats: Sequence[str]) -> str:
    return f"unmeasured: no {', '.join(cats)} in the bundle (a city file can supply them)"


def unmeasured(ctx: CheckupContext, cats: Sequence[str]) -> Evaluation | None:
    """``no_data`` when any of ``cats`` has no data in the bundle, else None."""
    gone = ctx.missing(cats)
    return Evaluation(no_data=_absent(gone)) if gone else None
