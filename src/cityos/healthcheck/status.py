"""Status of indicator values: ``pass`` / ``fail`` against the target, ``no_target`` for rates
without one, ``no_data`` for what was not measured — never ``fail`` for missing data.

A value whose unit still has unmeasured parts (``unknown`` > 0) is, for a method that says so,
a lower bound of the true figure: it passes a ``>=`` target only if the bound already does, and
fails a ``<=`` target only if the bound already does (a hazard count of 3 with two blank cells
fails: there are at least 3); otherwise it is ``no_data``. Counts of problems without a
published target fail on any case (implicit target 0, the policy's ``implicit_zero_units``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cityos.healthcheck.policy import Policy

if TYPE_CHECKING:
    from cityos.healthcheck.catalogue import Indicator

__all__ = ["STATUSES", "TARGET_OPS", "Target", "statuses", "target_of"]

STATUSES = ("pass", "fail", "no_data", "no_target")
#: the comparisons a target may use (``target_op``)
TARGET_OPS = (">=", "<=", ">", "<", "==")
#: float noise allowed when comparing with a target (relative to max(1, |target|))
EPS = 1e-9
IMPLICIT_SOURCE = "implicit: every case is a problem (no published target)"


@dataclass(frozen=True)
class Target:
    """The target an indicator's values are judged against (``value`` None: no target)."""

    value: float | None
    op: str | None
    source: str | None


def target_of(ind: Indicator, policy: Policy) -> Target:
    """The indicator's published target, or the implicit 0 of a count of problems."""
    if ind.target is None and ind.direction == "lower" and ind.unit in policy.implicit_zero_units:
        return Target(0.0, "<=", IMPLICIT_SOURCE)
    if ind.target is None:
        return Target(None, None, None)
    op = ind.target_op or (">=" if ind.direction == "higher" else "<=")
    return Target(float(ind.target), op, ind.target_source)


def _meets(values: NDArray[np.float64], target: float, op: str) -> NDArray[np.bool_]:
    eps = EPS * max(1.0, abs(target))
    ok: NDArray[np.bool_] = {
        ">=": values >= target - eps,
        "<=": values <= target + eps,
        ">": values > target + eps,
        "<": values < target - eps,
        "==": np.abs(values - target) <= eps,
    }[op]
    return ok


def statuses(
    value_array: ArrayLike, unknown_array: ArrayLike, *, bound: bool, target: Target
) -> NDArray[np.str_]:
    """The status of each value (see the module docstring); ``unknown`` counts the unmeasured
    parts behind each value, and ``bound`` says whether the value is then a lower bound."""
    values = np.asarray(value_array, dtype=np.float64)
    unknown = np.asarray(unknown_array, dtype=np.float64)
    missing = np.isnan(values)
    partial = (np.nan_to_num(unknown) > 0) & ~missing & bound
    if target.value is None:
        return np.where(missing | partial, "no_data", "no_target").astype("<U9")
    ok = _meets(np.nan_to_num(values), target.value, target.op or ">=")
    status = np.where(ok, "pass", "fail")
    # a lower bound decides "≥ target: pass" and "≤ target: fail"; anything else stays open
    decided = (
        ok if target.op in (">=", ">") else ~ok if target.op in ("<=", "<") else np.zeros_like(ok)
    )
    status = np.where(partial & ~decided, "no_data", status)
    return np.where(missing, "no_data", status).astype("<U9")
