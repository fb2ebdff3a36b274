"""The hotline's service catalogue (12345 派单目录) as Open311 services, read from TOML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityos.errors import ConfigError
from cityos.tomlfiles import read_with_defaults

__all__ = [
    "DATATYPES",
    "REQUEST_TYPES",
    "Attribute",
    "Service",
    "ServiceCatalogue",
    "load_services",
]

#: Open311 attribute datatypes
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
#: the five request types of 12345 (咨询、求助、投诉、举报、建议)
REQUEST_TYPES = ("inquiry", "help", "complaint", "report", "suggestion")


@dataclass(frozen=True)
class Attribute:
    """One Open311 attribute of a service definition."""

    code: str
    datatype: str
    required: bool
    order: int
    description: str
    values: tuple[tuple[str, str], ...] = ()
    datatype_description: str = ""


@dataclass(frozen=True)
class Service:
    """One service: its Open311 code and names, 12345 category, default department, urgency
    class and duplicate rule."""

    service_code: str
    name_zh: str
    name_en: str
    category: str
    request_type: str
    group: str
    keywords: tuple[str, ...]
    department: str
    urgency: str
    duplicate_radius_m: float
    duplicate_window_h: float
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class ServiceCatalogue:
    """The services by code, in file order, and where they were read from."""

    services: Mapping[str, Service]
    source: str


def _attribute(raw: Mapping[str, Any], where: str) -> Attribute:
    code = str(raw.get("code", ""))
    datatype = str(raw.get("datatype", ""))
    if not code or datatype not in DATATYPES:
        raise ConfigError(
            f"{where}: attribute {code!r}: datatype must be one of {', '.join(DATATYPES)}"
        )
    values = tuple((str(v["key"]), str(v["name"])) for v in raw.get("values", []))
    if datatype.endswith("valuelist") and not values:
        raise ConfigError(f"{where}: attribute {code!r}: a {datatype} needs values")
    return Attribute(
        code=code, datatype=datatype, required=bool(raw.get("required", False)),
        order=int(raw.get("order", 0)), description=str(raw.get("description", "")),
        values=values, datatype_description=str(raw.get("datatype_description", "")),
    )  # fmt: skip


def load_services(
    path: str | Path | None = None, *, urgencies: Mapping[str, Any]
) -> ServiceCatalogue:
    """The built-in catalogue (``ops/services.toml``) or a city's own file, checked: unique codes,
    known request types and urgency classes (``urgencies``, from the deadlines), valid attributes.

    Raises
    ------
    ConfigError
        Naming the file, the service and the field.
    """
    raw, where = read_with_defaults(
        "cityos.ops", "services.toml", path, what="service catalogue", merge_own=False
    )
    services: dict[str, Service] = {}
    for k, item in enumerate(raw.get("service", [])):
        code = str(item.get("service_code", ""))
        w = f"{where}: service {code or f'#{k + 1}'}"
        if not code:
            raise ConfigError(f"{w}: missing service_code")
        if code in services:
            raise ConfigError(f"{w}: service_code repeats")
        if item.get("request_type") not in REQUEST_TYPES:
            raise ConfigError(f"{w}: request_type must be one of {', '.join(REQUEST_TYPES)}")
        if item.get("urgency") not in urgencies:
            raise ConfigError(
                f"{w}: urgency {item.get('urgency')!r} is not a class of the deadlines ({', '.join(urgencies)})"
            )
        services[code] = Service(
            service_code=code, name_zh=str(item.get("name_zh", code)), name_en=str(item.get("name_en", code)),
            category=str(item.get("category", "")), request_type=str(item["request_type"]),
            group=str(item.get("group", "")), keywords=tuple(map(str, item.get("keywords", []))),
            department=str(item.get("department", "")), urgency=str(item["urgency"]),
            duplicate_radius_m=float(item.get("duplicate_radius_m", 50)),
            duplicate_window_h=float(item.get("duplicate_window_h", 72)),
            attributes=tuple(_attribute(a, w) for a in item.get("attributes", [])),
        )  # fmt: skip
    if not services:
        raise ConfigError(f"{where}: the catalogue has no [[service]] entries")
    return ServiceCatalogue(services, where)
