"""Alerts as OASIS CAP 1.2 messages (Common Alerting Protocol, also ITU-T X.1303) and an Atom
feed of them.

Severity from the level (red Extreme, orange Severe, yellow Moderate, blue Minor), urgency from
the rule (Immediate while the condition holds, Past once it cleared), certainty Observed (a
sensor reading); the area a circle around the monitored point. The identifier follows GB/T
35965.1-2018 (``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N``: the GB/T 2260 adcode, the agency, unit and
extension codes, the time in Beijing time, a sequence number) when the city's adcode is set
(../shared/OPS.md §2.5).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from cityos.errors import ConfigError

__all__ = ["CAP_NS", "CapSettings", "cap_feed", "cap_message", "identifier"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SEVERITY = {"red": "Extreme", "orange": "Severe", "yellow": "Moderate", "blue": "Minor"}
CATEGORY = {"gas": "Infra", "water": "Infra", "drainage": "Met", "bridge": "Infra", "heating": "Infra",
            "device": "Infra"}  # fmt: skip
BEIJING = dt.timezone(dt.timedelta(hours=8))
#: the radius of an alert's area around its point, km
AREA_KM = 0.2


@dataclass(frozen=True)
class CapSettings:
    """Who sends the city's alerts and, for GB/T 35965.1 identifiers, its codes."""

    sender: str = "cityos@localhost"
    adcode: str | None = None  # 6 digits, GB/T 2260
    agency: str = "000"  # 3 digits, GB/T 4657
    unit: str = "000"
    extension: str = "00"

    def __post_init__(self) -> None:
        bad = [f"{name} {value!r} must be {n} digits" for name, value, n in
               (("adcode", self.adcode, 6), ("agency", self.agency, 3), ("unit", self.unit, 3),
                ("extension", self.extension, 2))
               if value is not None and not re.fullmatch(rf"\d{{{n}}}", value)]  # fmt: skip
        if bad:
            raise ConfigError("CAP settings: " + "; ".join(bad))


def _cap_time(iso: str) -> str:
    """``2026-12-01T08:01:00Z`` → CAP's ``2026-12-01T08:01:00+00:00``."""
    return iso.replace("Z", "+00:00")


def identifier(view: dict[str, Any], settings: CapSettings) -> str:
    """The message id: GB/T 35965.1's pattern with the adcode, else ``cityos-alert-ID``."""
    if settings.adcode is None:
        return f"cityos-alert-{view['id']}"
    raised = dt.datetime.fromisoformat(view["raised_at"].replace("Z", "+00:00")).astimezone(BEIJING)
    codes = f"{settings.adcode}{settings.agency}{settings.unit}{settings.extension}"
    return f"{codes}_{raised:%Y%m%d%H%M%S}_{view['id']}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def cap_message(view: dict[str, Any], settings: CapSettings, sent: dt.datetime) -> bytes:
    """The CAP 1.2 XML of an alert (its view from :meth:`cityos.lifelines.monitor.Monitor.view`)."""
    ET.register_namespace("", CAP_NS)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(view, settings))
    _sub(root, "sender", settings.sender)
    _sub(root, "sent", sent.replace(microsecond=0).isoformat() if sent.tzinfo else
         sent.replace(microsecond=0).isoformat() + "+00:00")  # fmt: skip
    _sub(root, "status", "Actual")
    _sub(root, "msgType", "Alert")
    _sub(root, "scope", "Restricted")
    _sub(root, "restriction", "the operations centre and the owner unit")
    info = _sub(root, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", CATEGORY.get(view["domain"], "Other"))
    _sub(info, "event", view["event"])
    _sub(info, "urgency", "Past" if view["cleared_at"] else "Immediate")
    _sub(info, "severity", SEVERITY[view["max_level"]])
    _sub(info, "certainty", "Observed")
    _sub(info, "onset", _cap_time(view["raised_at"]))
    _sub(info, "senderName", "cityos lifeline monitor")
    _sub(info, "headline", f"{view['max_level']} alert: {view['event']}")
    readings = "; ".join(f"{t}: {v:g}" for t, v in view["readings"])
    _sub(
        info,
        "description",
        f"rule {view['rule']['id']} ({view['rule']['version']}); readings {readings}",
    )
    for name, value in (("level", view["level"]), ("max_level", view["max_level"]),
                        ("rule", view["rule"]["id"]), ("datastream", str(view["datastream"]))):  # fmt: skip
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    area = _sub(info, "area")
    units = view.get("units") or {}
    _sub(
        area,
        "areaDesc",
        ", ".join(f"{k} {v}" for k, v in units.items() if v) or "the monitored point",
    )
    if view.get("lat") is not None and view.get("lon") is not None:
        _sub(area, "circle", f"{view['lat']:.6f},{view['lon']:.6f} {AREA_KM}")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def cap_feed(
    views: list[dict[str, Any]], settings: CapSettings, base: str, now: dt.datetime
) -> bytes:
    """An Atom feed of alerts, each entry linking to its CAP message."""
    atom = "http://www.w3.org/2005/Atom"
    ET.register_namespace("", atom)
    feed = ET.Element(f"{{{atom}}}feed")
    stamp = now.replace(microsecond=0).isoformat() + "Z"
    for tag, text in (("id", f"{base}/api/v1/alerts/feed.atom"), ("title", "cityos lifeline alerts"),
                      ("updated", stamp)):  # fmt: skip
        ET.SubElement(feed, f"{{{atom}}}{tag}").text = text
    author = ET.SubElement(feed, f"{{{atom}}}author")
    ET.SubElement(author, f"{{{atom}}}name").text = settings.sender
    for v in views:
        entry = ET.SubElement(feed, f"{{{atom}}}entry")
        ET.SubElement(entry, f"{{{atom}}}id").text = identifier(v, settings)
        ET.SubElement(entry, f"{{{atom}}}title").text = f"{v['max_level']}: {v['event']}"
        ET.SubElement(entry, f"{{{atom}}}updated").text = v["raised_at"]
        ET.SubElement(entry, f"{{{atom}}}link", rel="alternate", type="application/cap+xml",
                      href=f"{base}/api/v1/alerts/{v['id']}.cap")  # fmt: skip
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
