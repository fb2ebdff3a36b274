"""The SensorThings query language (an OData subset): ``$filter`` parsed into a tree and
compiled to SQL on an entity set's table, ``$orderby``, ``$select`` and ``$expand``.

``$filter`` has comparisons (``eq ne gt ge lt le``), ``and``, ``or``, ``not``, parentheses,
literals (numbers, ``'strings'``, ``true``/``false``/``null``, ISO 8601 times), member paths
through navigation links (``Datastream/id``, ``Thing/name``, ``properties/kind``), the string
functions ``substringof``, ``startswith``, ``endswith``, ``tolower``, ``toupper``, and the
spatial ``geo.intersects`` / ``st_intersects`` / ``st_within`` against ``geography'WKT'``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection

from cityos.errors import InputError
from cityos.lifelines.entities import ENTITY_SETS, M2M, EntitySet, parse_time
from cityos.lifelines.geometry import from_geojson, from_wkt

__all__ = ["Expand", "compile_filter", "parse_expand", "parse_filter", "parse_orderby"]

_TOKEN = re.compile(
    r"\s*(?:(?P<geo>geography'[^']*')|(?P<str>'(?:[^']|'')*')"
    r"|(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_@][\w.@]*(?:/[A-Za-z_@][\w.@]*)*)"
    r"|(?P<punct>[(),]))"
)
_CMP = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"substringof", "startswith", "endswith", "tolower", "toupper", "length",
              "geo.intersects", "st_intersects", "st_within", "st_contains"}  # fmt: skip


@dataclass(frozen=True)
class Node:
    op: str  # "and" "or" "not" a comparison, "lit", "path", "call"
    args: tuple[Any, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InputError(
                f"$filter: cannot read {text[pos : pos + 20]!r} (at character {pos + 1})"
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def parse_filter(text: str) -> Node:
    """The tree of a ``$filter`` expression.

    Raises
    ------
    InputError
        The expression does not parse; the message says where.
    """
    tokens = _tokens(text)
    at = 0

    def peek() -> tuple[str, str] | None:
        return tokens[at] if at < len(tokens) else None

    def take(value: str | None = None) -> tuple[str, str]:
        nonlocal at
        tok = peek()
        if tok is None or (value is not None and tok[1] != value):
            raise InputError(f"$filter {text!r}: expected {value or 'more'} at the end" if tok is None
                             else f"$filter {text!r}: expected {value!r}, found {tok[1]!r}")  # fmt: skip
        at += 1
        return tok

    def word(w: str) -> bool:
        tok = peek()
        return tok is not None and tok[0] == "name" and tok[1] == w

    def expr() -> Node:
        node = conj()
        while word("or"):
            take()
            node = Node("or", (node, conj()))
        return node

    def conj() -> Node:
        node = neg()
        while word("and"):
            take()
            node = Node("and", (node, neg()))
        return node

    def neg() -> Node:
        if word("not"):
            take()
            return Node("not", (neg(),))
        left = atom()
        tok = peek()
        if tok is not None and tok[0] == "name" and tok[1] in _CMP:
            take()
            return Node(tok[1], (left, atom()))
        return left

    def atom() -> Node:
        kind, value = take()
        if value == "(":
            node = expr()
            take(")")
            return node
        if kind == "str":
            return Node("lit", (value[1:-1].replace("''", "'"),))
        if kind == "num":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            if not -(2**53) <= number <= 2**53:
                raise InputError(f"$filter: the number {value} is out of range")
            return Node("lit", (number,))
        if kind == "time":
            return Node("lit", (parse_time(value, "$filter"),))
        if kind == "geo":
            return Node("lit", (from_wkt(value[len("geography'") : -1]),))
        if kind == "name":
            if value in ("true", "false", "null"):
                return Node("lit", ({"true": True, "false": False, "null": None}[value],))
            if value in _FUNCTIONS:
                take("(")
                args = [expr()]
                while peek() == ("punct", ","):
                    take()
                    args.append(expr())
                take(")")
                return Node("call", (value, *args))
            return Node("path", tuple(value.split("/")))
        raise InputError(f"$filter {text!r}: unexpected {value!r}")

    node = expr()
    if at != len(tokens):
        raise InputError(
            f"$filter {text!r}: unexpected {tokens[at][1]!r} after a complete expression"
        )
    return node


@dataclass
class _Context:
    conn: Connection
    entity: EntitySet


def compile_filter(node: Node, entity: EntitySet, conn: Connection) -> ColumnElement[bool]:
    """``node`` as a condition on ``entity``'s table (paths through links as subqueries; the
    spatial functions as the ids whose shape passes the exact test).

    Raises
    ------
    InputError
        An unknown member or link, a function given the wrong arguments.
    """
    return _bool(node, _Context(conn, entity))


def _bool(node: Node, ctx: _Context) -> ColumnElement[bool]:
    if node.op == "and":
        return and_(_bool(node.args[0], ctx), _bool(node.args[1], ctx))
    if node.op == "or":
        return or_(_bool(node.args[0], ctx), _bool(node.args[1], ctx))
    if node.op == "not":
        return not_(_bool(node.args[0], ctx))
    if node.op in _CMP:
        return _compare(node.op, node.args[0], node.args[1], ctx)
    if node.op == "call":
        return _call_bool(node, ctx)
    if node.op == "lit" and isinstance(node.args[0], bool):
        return true() if node.args[0] else false()
    raise InputError("$filter: a condition is needed (a comparison, a function or and/or/not)")


def _through(path: tuple[str, ...], ctx: _Context, inner: Callable[[_Context, tuple[str, ...]], ColumnElement[bool]]) -> ColumnElement[bool]:  # fmt: skip
    """A condition on the entity reached by ``path[0]`` (a link), as a subquery."""
    link = ctx.entity.link(path[0])
    if link is None:
        raise InputError(f"$filter: {ctx.entity.singular} has no member or link {path[0]!r}")
    target = ENTITY_SETS[link.target]
    cond = inner(_Context(ctx.conn, target), path[1:])
    tt, table = target.table, ctx.entity.table
    if link.kind == "one":
        return table.c[link.column].in_(select(tt.c.id).where(cond))
    if link.kind == "many":
        return table.c.id.in_(select(tt.c[link.column]).where(cond))
    mine, theirs = (
        ("thing_id", "location_id") if ctx.entity.name == "Things" else ("location_id", "thing_id")
    )
    return table.c.id.in_(select(M2M.c[mine]).where(M2M.c[theirs].in_(select(tt.c.id).where(cond))))


def _column(path: tuple[str, ...], ctx: _Context, literal: Any) -> ColumnElement[Any]:
    """The SQL value of a member path on this entity (no links)."""
    name = path[0]
    table = ctx.entity.table
    if name in ("id", "@iot.id"):
        return table.c.id
    member = ctx.entity.member(name)
    if member is None:
        raise InputError(f"$filter: {ctx.entity.singular} has no member {name!r}")
    col = table.c[member.column]
    if member.kind == "result":
        return table.c.result_number if isinstance(literal, int | float) else col
    if member.kind == "json" and len(path) > 1:
        key = "$." + ".".join(path[1:])
        if ctx.conn.dialect.name == "sqlite":
            return func.json_extract(col, key)
        as_json = cast(col, JSON)[tuple(path[1:])]
        typed: ColumnElement[Any] = (
            as_json.as_float() if isinstance(literal, int | float) else as_json.as_string()
        )
        return typed
    return col


def _compare(op: str, left: Node, right: Node, ctx: _Context) -> ColumnElement[bool]:
    if left.op == "lit" and right.op != "lit":
        flip = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)
        return _compare(flip, right, left, ctx)
    value = right.args[0] if right.op == "lit" else None
    if left.op == "path":
        path = left.args
        first = path[0]
        if (
            ctx.entity.member(first) is None
            and first not in ("id", "@iot.id")
            and ctx.entity.link(first)
        ):
            return _through(path, ctx, lambda c, rest: _compare(op, Node("path", rest), right, c))
        lhs: ColumnElement[Any] = _column(path, ctx, value)
    elif left.op == "call":
        lhs = _call_value(left, ctx)
    else:
        raise InputError("$filter: compare a member (or a function of one) with a value")
    if right.op != "lit":
        raise InputError("$filter: the right side of a comparison must be a value")
    if value is None:
        return lhs.is_(None) if op == "eq" else lhs.is_not(None)
    if isinstance(value, dt.datetime) and ctx.conn.dialect.name == "sqlite":
        value = value.strftime("%Y-%m-%d %H:%M:%S.%f")  # times are stored as this text
    ops: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
        "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    }  # fmt: skip
    if ctx.entity.member(left.args[0] if left.op == "path" else "") and isinstance(value, str):
        member = ctx.entity.member(left.args[0])
        if member is not None and member.kind == "result":
            value = json.dumps(value, ensure_ascii=False)  # a text result is stored as JSON
    return ops[op](lhs, value)


def _call_value(node: Node, ctx: _Context) -> ColumnElement[Any]:
    name, *args = node.args
    if name in ("tolower", "toupper", "length") and len(args) == 1 and args[0].op == "path":
        col = _column(args[0].args, ctx, None)
        fn = {"tolower": func.lower, "toupper": func.upper, "length": func.length}[name]
        value: ColumnElement[Any] = fn(col)
        return value
    raise InputError(f"$filter: {name}() takes one member here")


def _call_bool(node: Node, ctx: _Context) -> ColumnElement[bool]:
    name, *args = node.args
    if name in ("substringof", "startswith", "endswith"):
        if len(args) != 2:
            raise InputError(f"$filter: {name}() takes two arguments")
        member, text = (args[1], args[0]) if name == "substringof" else (args[0], args[1])
        if member.op != "path" or text.op != "lit" or not isinstance(text.args[0], str):
            raise InputError(f"$filter: {name}() takes a member and a string")
        col = _column(member.args, ctx, None)
        s = text.args[0]
        if name == "substringof":
            return col.contains(s, autoescape=True)
        return (
            col.startswith(s, autoescape=True)
            if name == "startswith"
            else col.endswith(s, autoescape=True)
        )
    # spatial: the member path leads to a geometry member; the test is exact (shapely)
    if len(args) != 2 or args[0].op != "path" or args[1].op != "lit":
        raise InputError(f"$filter: {name}() takes a geometry member and geography'WKT'")
    return _spatial(name, args[0].args, args[1].args[0], ctx)


def _spatial(name: str, path: tuple[str, ...], geom: Any, ctx: _Context) -> ColumnElement[bool]:
    member = ctx.entity.member(path[0])
    if member is None:
        return _through(path, ctx, lambda c, rest: _spatial(name, rest, geom, c))
    if member.kind != "geo" or len(path) != 1:
        raise InputError(
            f"$filter: {name}() needs a geometry member (location, feature), not {path[0]!r}"
        )
    t = ctx.entity.table
    minx, miny, maxx, maxy = geom.bounds
    rows = ctx.conn.execute(
        select(t.c.id, t.c[member.column]).where(
            t.c.maxx >= minx, t.c.minx <= maxx, t.c.maxy >= miny, t.c.miny <= maxy
        )
    ).all()
    test = {"geo.intersects": "intersects", "st_intersects": "intersects",
            "st_within": "within", "st_contains": "contains"}[name]  # fmt: skip
    ids = [r[0] for r in rows if getattr(from_geojson(json.loads(r[1])), test)(geom)]
    return t.c.id.in_(ids) if ids else false()


def parse_orderby(text: str | None, entity: EntitySet) -> list[tuple[str, bool]]:
    """``$orderby`` as (column, descending) pairs; the id last, so pages are stable."""
    out: list[tuple[str, bool]] = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        name, direction = words[0], (words[1].lower() if len(words) > 1 else "asc")
        if direction not in ("asc", "desc"):
            raise InputError(f"$orderby {part.strip()!r}: use NAME asc or NAME desc")
        member = entity.member(name)
        column = "id" if name in ("id", "@iot.id") else member.column if member else None
        if column is None:
            raise InputError(f"$orderby: {entity.singular} has no member {name!r}")
        out.append((column, direction == "desc"))
    if not any(c == "id" for c, _ in out):
        out.append(("id", False))
    return out


@dataclass
class Expand:
    """One link to expand, with its own query options (``Datastreams($top=1;$orderby=id)``)."""

    link: str
    options: dict[str, str] = field(default_factory=dict)
    inner: list[Expand] = field(default_factory=list)


def _split(text: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def parse_expand(text: str | None) -> list[Expand]:
    """``$expand`` as a list of links with their options; ``A/B`` expands B inside A."""
    out: list[Expand] = []
    for part in _split(text or "", ","):
        options: dict[str, str] = {}
        if part.endswith(")") and "(" in part:
            head, inner = part[: part.index("(")], part[part.index("(") + 1 : -1]
            for opt in _split(inner, ";"):
                key, _, value = opt.partition("=")
                options[key.strip()] = value.strip()
        else:
            head = part
        names = head.split("/")
        node = Expand(names[-1], options)
        for name in reversed(names[:-1]):
            node = Expand(name, {}, [node])
        if "$expand" in options:
            node.inner.extend(parse_expand(options.pop("$expand")))
        out.append(node)
    return out
