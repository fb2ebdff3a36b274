"""Open311 wire formats: XML (mandatory) and JSON (the mechanical mapping: containers of repeated
children become arrays, the root element dropped), datetimes as ``YYYY-MM-DDTHH:MM:SSZ``, ids as
strings, absent optional fields omitted (../shared/OPEN311.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET

import orjson
from fastapi.responses import Response

from cityos.ops.deadlines import parse_datetime

__all__ = ["JSON", "XML", "open311_response", "parse_datetime", "stamp", "without_nulls"]

XML = "text/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


def stamp(value: dt.datetime | None) -> str | None:
    """A stored (naive UTC) datetime as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def _xml_value(parent: ET.Element, key: str, value: Any, item: str | None = None) -> None:
    if value is None:
        return
    el = ET.SubElement(parent, key)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _xml_value(el, k, v)
    elif isinstance(value, list | tuple):
        child = item or (key[:-1] if key.endswith("s") else "item")
        for v in value:
            _xml_value(el, child, v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    else:
        el.text = str(value)


def without_nulls(value: Any) -> Any:
    """``value`` with every null field of every mapping in it left out (Open311 omits absent
    optional fields)."""
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [without_nulls(v) for v in value]
    return value


def open311_response(
    fmt: str, root: str, item: str | None, payload: Sequence[Any] | Mapping[str, Any],
    *, status: int = 200, bare_xml: bool = False, clean: bool = True,
) -> Response:  # fmt: skip
    """``payload`` (a list of ``item`` elements under ``root``, or one mapping as ``root``) in
    ``fmt``: JSON drops the root; XML keeps it. ``clean=False``: the payload has no nulls
    already (:func:`cityos.web.open311.public_request`)."""
    if fmt == "json":
        data = orjson.dumps(without_nulls(payload) if clean else payload)
        return Response(data, status_code=status, media_type=JSON)
    top = ET.Element(root)
    if isinstance(payload, Mapping):
        for k, v in payload.items():
            _xml_value(top, k, v)
    else:
        for entry in payload:
            _xml_value(top, item or "item", entry)
    body = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="unicode")
    if bare_xml:  # discovery: one old validator wants the type without a charset
        return Response(body, status_code=status, headers={"content-type": "text/xml"})
    return Response(body, status_code=status, media_type=XML)
