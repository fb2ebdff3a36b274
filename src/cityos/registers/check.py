"""The check of a filled register against its schema: the header row found (Chinese headers,
with or without the unit, or the column names; rows above it — titles, merged group headers —
skipped, and the template's second header row too), every cell checked — a required cell
blank, a flag that is not 是/否, a number that is not one or out of range, a code not allowed, a
date that does not parse, a key the bundle does not have, a key given twice — and every
problem listed with its row, column, value and fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cityos.bundle import Bundle
from cityos.errors import InputError
from cityos.registers.schema import Column, RegisterSchema
from cityos.registers.template import REF_PREFIX

__all__ = [
    "Checked",
    "Problem",
    "address_index",
    "check_file",
    "check_register",
    "key_values",
    "normalise_address",
    "read_checked",
    "read_filled",
    "write_report",
]

_TRUE = {"是", "1", "true", "yes", "y", "有", "√", "存在"}
_FALSE = {"否", "0", "false", "no", "n", "无", "×", "不存在"}
_BLANK = {"", "nan", "none", "null", "-", "—"}


@dataclass(frozen=True)
class Problem:
    """One bad cell: its spreadsheet row (1-based, headers included), column header, value,
    what is wrong, how to fix it, and whether it is an error or a warning."""

    row: int
    column: str
    value: str
    problem: str
    fix: str
    severity: str = "error"


@dataclass(frozen=True)
class Checked:
    """A register read against its schema: the table with the schema's column names (text,
    flags as 是/否), the problems, and the columns it did not know."""

    table: pd.DataFrame
    problems: list[Problem]
    ignored: list[str]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def read_filled(path: Path) -> pd.DataFrame:
    """A filled register as text cells, no header row taken yet (CSV or the first sheet of an
    XLSX, or the template's data sheet)."""
    from cityos.registers.template import DATA_SHEET

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(
                path, header=None, dtype=str, encoding="utf-8-sig", keep_default_na=False
            )
        if suffix == ".xlsx":
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            sheet = DATA_SHEET if DATA_SHEET in book.sheetnames else book.sheetnames[0]
            book.close()
            raw = pd.read_excel(
                path, sheet_name=sheet, header=None, dtype=object, engine="openpyxl"
            )
            return raw.map(_text)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not readable ({exc})") from exc
    raise InputError(f"{path}: give the register as .xlsx or .csv")


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _names(schema: RegisterSchema) -> dict[str, str]:
    """Every accepted header → the column name."""
    out: dict[str, str] = {}
    for c in schema.columns:
        for h in (c.name, c.zh, c.header, c.header.replace("（", "(").replace("）", ")"), c.en):
            out[h.strip().lower()] = c.name
    return out


def _header_row(raw: pd.DataFrame, names: dict[str, str], where: str) -> int:
    for i in range(min(len(raw), 10)):
        cells = [str(v).strip().lower() for v in raw.iloc[i] if str(v).strip()]
        if cells and sum(c in names for c in cells) >= max(1, len(cells) // 2):
            return i
    raise InputError(f"{where}: no header row with the register's columns in the first 10 rows; "
                     "start from `cityos template`")  # fmt: skip


def check_register(
    raw: pd.DataFrame, schema: RegisterSchema, keys: Collection[str] | None, where: str,
    addresses: Mapping[str, str | None] | None = None,
) -> Checked:  # fmt: skip
    """Read ``raw`` (text cells, from :func:`read_filled`) as register ``schema``; ``keys``: the
    ids the key must be one of (the bundle's buildings or units; None: not checked).

    A building-keyed register without a ``building_id`` column may name its buildings by
    address (a column 地址 / 房屋地址 / address): ``addresses`` (:func:`address_index`) maps
    each to its building; an address no building has, or several have, is an error."""
    names = _names(schema)
    top = _header_row(raw, names, where)
    header = [str(v).strip() for v in raw.iloc[top]]
    body_start = top + 1
    if body_start < len(raw) and all(
        str(v).strip() in ("", *[c.name for c in schema.columns]) or str(v).startswith(REF_PREFIX)
        for v in raw.iloc[body_start]
    ):
        body_start += 1  # the template's second header row: the column names
    mapped: dict[int, str] = {}
    ignored: list[str] = []
    problems: list[Problem] = []
    for j, h in enumerate(header):
        name = names.get(h.lower())
        if h.startswith(("〔参考〕", REF_PREFIX)) or not h:
            continue
        if name is None:
            ignored.append(h)
        elif name in mapped.values():
            problems.append(
                Problem(top + 1, h, "", "the column is given twice", "keep one of them")
            )
        else:
            mapped[j] = name
    body = raw.iloc[body_start:].reset_index(drop=True)
    body = body[~body.apply(lambda r: all(str(v).strip() == "" for v in r), axis=1)]
    by_address: pd.Series | None = None
    if schema.key == "building_id" and schema.key not in mapped.values() and addresses is not None:
        at = next((j for j, h in enumerate(header) if h.lower() in _ADDRESS_HEADERS), None)
        if at is not None:
            by_address = body.iloc[:, at].astype(str).str.strip()
    for c in schema.columns:
        if c.name == schema.key and by_address is not None:
            continue
        if (c.required or c.name == schema.key) and c.name not in mapped.values():
            problems.append(Problem(top + 1, c.header, "", "a required column is missing",
                                    f"add the column {c.header} ({c.name})"))  # fmt: skip
    out = pd.DataFrame({name: body.iloc[:, j].astype(str).str.strip().to_numpy()
                        for j, name in mapped.items()})  # fmt: skip
    lines = (body.index.to_numpy() + body_start + 1).tolist()
    if by_address is not None and addresses is not None:
        ids: list[str] = []
        for line, text in zip(lines, by_address, strict=True):
            found = addresses.get(normalise_address(text), "")
            if found is None or not found:
                why = (
                    "several buildings have this address"
                    if found is None
                    else "no building of the bundle has this address"
                )
                problems.append(Problem(line, "地址", text, why, "give the building_id (建筑编号) instead"))  # fmt: skip
            ids.append(found or "")
        if out.columns.empty:
            out = pd.DataFrame(index=range(len(ids)))
        out[schema.key] = ids
    for name in out.columns:
        if name == schema.key and by_address is not None:
            continue  # the buildings the addresses name (or a problem each)
        c = schema.column(name)
        values = out[name].tolist()
        cleaned = []
        for line, value in zip(lines, values, strict=True):
            fixed, problem = _cell(c, value, line, keys if name == schema.key else None)
            cleaned.append(fixed)
            if problem is not None:
                problems.append(problem)
        out[name] = cleaned
    if schema.unique and schema.key in out:
        seen: dict[str, int] = {}
        for line, value in zip(lines, out[schema.key], strict=True):
            if value and value in seen:
                problems.append(Problem(line, schema.column(schema.key).header, value,
                                        f"the key is also on row {seen[value]}", "keep one row per key"))  # fmt: skip
            seen.setdefault(value, line)
    problems.sort(key=lambda p: (p.row, p.column))
    return Checked(out.reset_index(drop=True), problems, ignored)


def _cell(
    c: Column, value: str, line: int, keys: Collection[str] | None
) -> tuple[str, Problem | None]:
    def bad(problem: str, fix: str, severity: str = "error") -> tuple[str, Problem]:
        return value, Problem(line, c.header, value, problem, fix, severity)

    if value.lower() in _BLANK:
        if c.required or keys is not None:
            return bad("a required cell is blank", f"fill in {c.header}")
        return "", None
    if keys is not None and value not in keys:
        return bad(f"no {c.name} {value!r} in the bundle", "use an id from the template's rows")
    if c.type == "flag":
        low = value.lower()
        if low in _TRUE:
            return "是", None
        if low in _FALSE:
            return "否", None
        return bad("not 是 or 否", "write 是 or 否 (blank: unknown)")
    if c.type in ("number", "integer"):
        try:
            number = float(value.replace(",", "").rstrip("%"))
        except ValueError:
            return bad("not a number", f"write a number{f' in {c.unit}' if c.unit else ''}")
        if c.type == "integer" and not number.is_integer():
            return bad("not a whole number", "write a whole number")
        if (c.min is not None and number < c.min) or (c.max is not None and number > c.max):
            low = "" if c.min is None else f"{c.min:g}"
            high = "" if c.max is None else f"{c.max:g}"
            return bad(f"out of range {low} – {high}", f"check the value ({c.unit or 'no unit'})")
        if c.unit == "%" and 0 < number <= 1:
            return f"{number:g}", Problem(line, c.header, value, "a share of at most 1 %",
                                          "check it is a percentage (85, not 0.85)", "warning")  # fmt: skip
        return f"{number:g}", None
    if c.type == "code" and value not in c.allowed:
        return bad("not one of the allowed values", f"use one of {'、'.join(c.allowed)}")
    if c.type == "date":
        try:
            return dt.date.fromisoformat(value[:10]).isoformat(), None
        except ValueError:
            return bad("not a date", "write it as YYYY-MM-DD, e.g. 2026-12-01")
    return value, None


def write_report(checked: Checked, out: Path) -> None:
    """Every problem (row, column, value, problem, fix, severity) as XLSX or CSV by suffix."""
    from cityos.outputs import atomic_file

    table = pd.DataFrame(
        [{"行 row": p.row, "列 column": p.column, "值 value": p.value, "问题 problem": p.problem,
          "修改 fix": p.fix, "级别 severity": p.severity} for p in checked.problems],
        columns=["行 row", "列 column", "值 value", "问题 problem", "修改 fix", "级别 severity"],
    )  # fmt: skip
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".xlsx":
            table.to_excel(tmp, index=False, engine="openpyxl")
        else:
            table.to_csv(tmp, index=False, encoding="utf-8-sig")


def key_values(
    schema: RegisterSchema, bundle: Bundle, admin_levels: dict[int, str] | None = None
) -> set[str] | None:
    """The ids a register's key must be one of: the bundle's buildings, or the units of the
    schema's level as the health check forms them (None: not checked)."""
    from cityos.units import bundle_units

    if schema.key == "building_id":
        return set(bundle.buildings["building_id"].astype(str))
    level = schema.key_level or schema.rows
    if level not in ("community", "subdistrict", "city"):
        return None
    return set(bundle_units(bundle, admin_levels).levels[level]["unit_id"].astype(str))


def check_file(
    name: str, path: Path, bundle: Bundle | None, admin_levels: dict[int, str] | None = None
) -> Checked:
    """A filled register file against the schema of register ``name``: its keys against
    ``bundle``'s buildings (by id or address) or units when a bundle is given."""
    from cityos.registers.schema import load_schema

    schema = load_schema(name)
    keys = key_values(schema, bundle, admin_levels) if bundle is not None else None
    index = address_index(bundle) if bundle is not None else None
    return check_register(read_filled(path), schema, keys, str(path), index)


def read_checked(
    name: str, path: Path, bundle: Bundle | None, admin_levels: dict[int, str] | None = None
) -> pd.DataFrame:
    """A register for the health check or the bundle: a built-in register is read against its
    schema (Chinese headers and the template's layout accepted, values normalised; its keys
    against ``bundle`` when given), any other as the plain table it is.

    Raises
    ------
    InputError
        A built-in register with errors: their count and the first, and the command that lists
        them all.
    """
    from cityos.registers.schema import BUILTIN_REGISTERS
    from cityos.sources.files import read_register

    if name not in BUILTIN_REGISTERS:
        return read_register(path)
    checked = check_file(name, path, bundle, admin_levels)
    if checked.errors:
        p = checked.errors[0]
        raise InputError(
            f"{path}: {len(checked.errors)} errors against the {name} schema, the first on row "
            f"{p.row}, {p.column} {p.value!r}: {p.problem}; list them all with "
            f"`cityos register check BUNDLE {name}={path} --report problems.xlsx`"
        )
    return checked.table


_ADDRESS_HEADERS = {"address", "地址", "房屋地址"}


def normalise_address(text: str) -> str:
    """An address compared without spaces, case or full-width forms (``东华门大街１２号`` =
    ``东华门大街 12号``)."""
    import unicodedata

    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def address_index(bundle: Bundle) -> dict[str, str | None]:
    """Normalised address → building id of the bundle's buildings (None where several share
    it)."""
    b = bundle.buildings
    if "address" not in b:
        return {}
    out: dict[str, str | None] = {}
    for bid, text in zip(b["building_id"].astype(str), b["address"], strict=True):
        if isinstance(text, str) and text.strip():
            key = normalise_address(text)
            out[key] = None if key in out else bid
    return out
