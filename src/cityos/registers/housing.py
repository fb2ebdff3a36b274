"""The housing-safety register (房屋安全台账, one row per inspection event) read as the buildings'
current state: the ten housing-level (住房) indicators' flags of each building (the ``housing``
register the health check reads) and when its next inspection is due (``inspection.toml``).

A building's state is, item by item, its latest recorded value. Its structural hazard is the
latest event that says either way — an appraisal of grade C or D (JGJ 125-2016), a foundation or
superstructure marked 隐患, an initial judgement of 严重隐患 say yes; grade A or B, or both parts
without a hazard, say no — and a rectification closed (已销号) on or after that event clears it.
The envelope hazard is read the same way from the envelope finding.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cityos.errors import ConfigError

__all__ = [
    "HOUSING_FLAGS",
    "InspectionRule",
    "InspectionRules",
    "current_state",
    "housing_register",
    "housing_status",
    "load_inspection_rules",
    "next_due",
]

#: the flags of the ``housing`` register copied from the latest event that records them
HOUSING_FLAGS = ("gas_hazard", "stairwell_hazard", "damaged_pipes", "not_self_contained",
                 "ageing_retrofit_needed", "tap_water_substandard", "energy_retrofit_needed",
                 "digital_retrofit_needed")  # fmt: skip
_PERIODIC = ("定期体检", "安全鉴定")


def _blank(s: pd.Series) -> pd.Series:
    return s.where(~s.astype(str).str.strip().isin(["", "nan", "None"]))


def _events(events: pd.DataFrame) -> pd.DataFrame:
    ev = events.copy()
    for c in ev.columns:
        ev[c] = _blank(ev[c].astype(object))
    ev["_date"] = pd.to_datetime(ev["inspection_date"], errors="coerce")
    ev["_order"] = np.arange(len(ev))
    return ev.sort_values(["building_id", "_date", "_order"], kind="stable")


def current_state(events: pd.DataFrame) -> pd.DataFrame:
    """Per building (index ``building_id``), each column's latest recorded value by inspection
    date (a later row wins on the same date)."""
    ev = _events(events)
    cols = [c for c in ev.columns if c != "building_id"]
    return ev.groupby("building_id")[cols].last()


def _latest_evidence(ev: pd.DataFrame, says: pd.Series) -> pd.DataFrame:
    """Per building, the latest event whose ``says`` is True or False (NaN: says nothing)."""
    rows = ev[says.notna()].assign(_says=says[says.notna()].astype(bool))
    return rows.groupby("building_id")[["_says", "_date"]].last()


def _cleared(ev: pd.DataFrame, evidence: pd.DataFrame) -> pd.Series:
    """Buildings whose latest rectification closed (已销号) on or after their evidence."""
    if "rectification_status" not in ev:
        return pd.Series(False, index=evidence.index)
    closed = ev[ev["rectification_status"].eq("已销号")]
    if closed.empty:
        return pd.Series(False, index=evidence.index)
    stated = closed["rectification_date"] if "rectification_date" in closed else closed["_date"]
    when = pd.to_datetime(stated, errors="coerce").fillna(closed["_date"])
    last = when.groupby(closed["building_id"]).max().reindex(evidence.index)
    return pd.Series((last >= evidence["_date"]).fillna(False).astype(bool), index=evidence.index)


def _flags(evidence: pd.DataFrame, cleared: pd.Series, index: pd.Index) -> pd.Series:
    says = evidence["_says"] & ~cleared.reindex(evidence.index, fill_value=False)
    text = says.map({True: "是", False: "否"}).reindex(index).astype(object)
    return text.where(text.notna(), "")


def housing_register(events: pd.DataFrame) -> pd.DataFrame:
    """The ``housing`` register (one row per building: the ten flags, 是/否, blank when no event
    says) from the housing-safety events."""
    ev = _events(events)
    index = pd.Index(sorted(ev["building_id"].dropna().unique()), name="building_id")

    def col(name: str) -> pd.Series:
        return ev[name] if name in ev else pd.Series(np.nan, index=ev.index, dtype=object)

    grade, found, sup = col("appraisal_grade"), col("foundation"), col("superstructure")
    yes = (
        grade.isin(["C", "D"])
        | found.eq("隐患")
        | sup.eq("隐患")
        | col("initial_judgement").eq("严重隐患")
    )
    no = grade.isin(["A", "B"]) | (found.isin(["无异常", "轻微"]) & sup.isin(["无异常", "轻微"]))
    structural = pd.Series(
        np.where(yes, True, np.where(no, False, np.nan)), index=ev.index, dtype=object
    )
    structural = structural.where(yes | no)
    env = col("envelope")
    envelope = pd.Series(np.where(env.eq("隐患"), True, False), index=ev.index, dtype=object).where(
        env.notna()
    )
    out = pd.DataFrame(index=index)
    for name, says in (("structural_hazard", structural), ("envelope_hazard", envelope)):
        evidence = _latest_evidence(ev, says)
        out[name] = _flags(evidence, _cleared(ev, evidence), index)
    state = current_state(events).reindex(index)
    for name in HOUSING_FLAGS:
        values = state[name] if name in state else pd.Series(np.nan, index=index, dtype=object)
        out[name] = values.astype(object).where(values.notna(), "").astype(str)
    return out.reset_index()


@dataclass(frozen=True)
class InspectionRule:
    """One row of the frequency table: its conditions, interval, first age and source."""

    id: str
    interval_years: float
    conditions: dict[str, Any]
    first_at_age_years: float | None
    source: str


@dataclass(frozen=True)
class InspectionRules:
    version: str
    default_design_life_years: float
    rules: tuple[InspectionRule, ...]
    source: str


_CONDITIONS = {"grade", "use", "self_built", "business_use", "multi_owner", "min_age_years",
               "beyond_design_life"}  # fmt: skip


def load_inspection_rules(path: Path | None = None) -> InspectionRules:
    """The inspection frequency table (default: the built-in ``inspection.toml``).

    Raises
    ------
    ConfigError
        Not TOML, a rule without id, interval or source, an unknown condition (every problem).
    """
    where = str(path) if path else "registers/inspection.toml"
    try:
        text = (
            path.read_text("utf-8")
            if path
            else resources.files("cityos.registers").joinpath("inspection.toml").read_text("utf-8")
        )
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: not readable as TOML ({exc})") from exc
    problems, rules = [], []
    for n, r in enumerate(raw.get("rule", []), 1):
        at = f"{where} rule {r.get('id', n)}"
        if not isinstance(r.get("id"), str) or not isinstance(r.get("source"), str):
            problems.append(f"{at}: give id and source")
            continue
        if not isinstance(r.get("interval_years"), int | float) or r["interval_years"] <= 0:
            problems.append(f"{at}: interval_years must be a positive number")
            continue
        unknown = set(r) - _CONDITIONS - {"id", "source", "interval_years", "first_at_age_years"}
        if unknown:
            problems.append(
                f"{at}: unknown keys {sorted(unknown)}; conditions are {sorted(_CONDITIONS)}"
            )
        rules.append(InspectionRule(r["id"], float(r["interval_years"]),
                                    {k: v for k, v in r.items() if k in _CONDITIONS},
                                    r.get("first_at_age_years"), r["source"]))  # fmt: skip
    if problems:
        raise ConfigError("; ".join(problems))
    return InspectionRules(str(raw.get("version", "")), float(raw.get("default_design_life_years", 50)),
                           tuple(rules), where)  # fmt: skip


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(x) else x


def _flag(value: Any) -> bool | None:
    return None if pd.isna(value) else str(value) == "是"


def _holds(
    rule: InspectionRule, b: pd.Series, age: float | None, life: float, skip_age: bool
) -> bool:
    c = rule.conditions
    if "grade" in c and b.get("appraisal_grade") not in c["grade"]:
        return False
    if "use" in c and b.get("use") not in c["use"]:
        return False
    for name in ("self_built", "business_use", "multi_owner"):
        if name in c and _flag(b.get(name)) is not bool(c[name]):
            return False
    if skip_age:
        return True
    if ("min_age_years" in c or "beyond_design_life" in c) and age is None:
        return False
    if "min_age_years" in c and age is not None and age < float(c["min_age_years"]):
        return False
    return not (
        "beyond_design_life" in c
        and age is not None
        and (age > life) is not bool(c["beyond_design_life"])
    )


def next_due(events: pd.DataFrame, rules: InspectionRules, as_of: dt.date) -> pd.DataFrame:
    """Per building: its latest grade, the rule that applies, the last periodic inspection
    (定期体检 or 安全鉴定), the next one due and whether it is overdue on ``as_of``.

    next due = the last periodic inspection + the rule's interval (in calendar months); never
    inspected: when the
    building reached the rule's ``first_at_age_years`` (or ``as_of`` when the rule has none: it is
    owed now). A building no rule applies to yet is first due at the youngest age a rule of its
    kind names; one no rule applies to at all has no date (rule ``none``); one whose age a rule
    needs but is unknown has none either (rule ``unknown: year_built``)."""
    state = current_state(events)
    ev = _events(events)
    periodic = ev[ev["inspection_kind"].isin(_PERIODIC)].groupby("building_id")["_date"].max()
    rows = []
    for bid, b in state.iterrows():
        year = _number(b.get("year_built"))
        given = _number(b.get("design_life_years"))
        life = rules.default_design_life_years if given is None else given
        age = None if year is None else (as_of - dt.date(int(year), 1, 1)).days / 365.25
        last = periodic.get(bid)
        rule = next((r for r in rules.rules if _holds(r, b, age, life, False)), None)
        due: dt.date | None = None
        rid = rule.id if rule else "none"
        if rule is not None:
            if last is not None and not pd.isna(last):
                due = (last + pd.DateOffset(months=round(rule.interval_years * 12))).date()
            elif rule.first_at_age_years is not None and age is not None:
                due = dt.date(int(year or 0) + int(rule.first_at_age_years), 1, 1)
            else:
                due = as_of
        else:
            later = [r for r in rules.rules if _holds(r, b, age, life, True)
                     and r.conditions.get("min_age_years") is not None]  # fmt: skip
            if later and age is None:
                rid = "unknown: year_built"
            elif later:
                first = min(later, key=lambda r: float(r.conditions["min_age_years"]))
                rid = f"{first.id} (first)"
                due = dt.date(
                    int(year or 0)
                    + int(first.first_at_age_years or first.conditions["min_age_years"]),
                    1,
                    1,
                )
        rows.append({"building_id": bid, "appraisal_grade": b.get("appraisal_grade"), "rule": rid,
                     "interval_years": rule.interval_years if rule else np.nan,
                     "last_periodic": None if last is None or pd.isna(last) else last.date(),
                     "next_due": due, "overdue": due is not None and due < as_of,
                     "days_overdue": (as_of - due).days if due is not None and due < as_of else 0})  # fmt: skip
    return pd.DataFrame(rows, columns=["building_id", "appraisal_grade", "rule", "interval_years",
                                       "last_periodic", "next_due", "overdue", "days_overdue"])  # fmt: skip


def housing_status(events: pd.DataFrame, rules: InspectionRules, as_of: dt.date) -> pd.DataFrame:
    """Per building the two safety-management flags (是/否; blank: unknown): its latest
    appraisal grade is C or D (``grade_cd``; no appraisal: blank), and its inspection is overdue
    on ``as_of`` by the frequency table (``inspection_overdue``; no date: blank)."""
    state = current_state(events)
    grade = (
        state["appraisal_grade"]
        if "appraisal_grade" in state
        else pd.Series(np.nan, index=state.index)
    )
    due = next_due(events, rules, as_of).set_index("building_id").reindex(state.index)
    cd = np.where(grade.isna(), "", np.where(grade.isin(["C", "D"]), "是", "否"))
    late = np.where(due["next_due"].isna(), "", np.where(due["overdue"].astype(bool), "是", "否"))
    return pd.DataFrame(
        {"building_id": state.index.astype(str), "grade_cd": cd, "inspection_overdue": late}
    )
