"""The city bundle: one GeoParquet file per layer (WGS84) plus ``manifest.json``.

A bundle is the foundation every later step reads. It is written atomically (a temporary folder
renamed into place) and every layer is checked against its schema when loaded, so a bundle from an
older cityos, or one edited by hand, fails with a message naming the layer and the column.

Its layers, their columns and the checks they pass are :mod:`cityos.layer_schema`. Lengths and
areas are measured in the manifest's projected CRS (``crs``); coordinates are stored in WGS84
(EPSG:4326).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj

from cityos.errors import BundleError
from cityos.flatlayer import FlatLayer, to_crs
from cityos.layer_schema import (
    ADDED_COLUMNS,
    BUILDING_USES,
    LAYER_SCHEMAS,
    UNIT_LEVELS,
    LayerSchema,
    empty_layer,
    validate_flat_layer,
    validate_layer,
)
from cityos.outputs import atomic_folder

__all__ = [
    "BUILDING_USES",
    "LAYER_SCHEMAS",
    "SCHEMA_VERSION",
    "UNIT_LEVELS",
    "Bundle",
    "LayerSchema",
    "empty_layer",
    "read_bundle",
    "validate_layer",
    "write_bundle",
]

SCHEMA_VERSION = 2

_REGISTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


@dataclass
class Bundle:
    """A loaded city bundle: layers as GeoDataFrames (WGS84), registers as DataFrames.

    Attributes
    ----------
    path
        The bundle folder.
    manifest
        The parsed ``manifest.json`` (schema version, sources, CRS, counts, as-of date).
    layers
        Layer name → GeoDataFrame in EPSG:4326.
    registers
        Register name → DataFrame (the city's own tables).
    """

    path: Path
    manifest: dict[str, Any]
    layers: MutableMapping[str, gpd.GeoDataFrame]
    registers: dict[str, pd.DataFrame]
    #: layer name → (the layer projected, the projection): see :meth:`projected`
    _projected: dict[str, tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def crs(self) -> str:
        """The projected CRS every measurement uses, e.g. ``"EPSG:32635"``."""
        return str(self.manifest["crs"])

    @property
    def as_of(self) -> str | None:
        """The date (``YYYY-MM-DD``) the data describe."""
        value = self.manifest.get("as_of")
        return str(value) if value else None

    def projected(self, name: str) -> gpd.GeoDataFrame:
        """Layer ``name`` in the measurement CRS (metres).

        The projection is made once per layer object (a million footprints take about 2 s) and
        handed out as a shallow copy: pandas' copy-on-write keeps the caller's changes its own.
        A layer replaced in :attr:`layers` is projected afresh.
        """
        layer = self.layers[name]
        hit = self._projected.get(name)
        if hit is None or hit[0] is not layer:
            hit = (layer, to_crs(layer, self.crs))
            self._projected[name] = hit
        return hit[1].copy(deep=False)

    @property
    def walk_nodes(self) -> gpd.GeoDataFrame:
        return self.layers["walk_nodes"]

    @property
    def walk_edges(self) -> gpd.GeoDataFrame:
        return self.layers["walk_edges"]

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        return self.layers["buildings"]

    @property
    def facilities(self) -> gpd.GeoDataFrame:
        return self.layers["facilities"]

    @property
    def green_spaces(self) -> gpd.GeoDataFrame:
        return self.layers["green_spaces"]

    @property
    def units(self) -> gpd.GeoDataFrame:
        return self.layers["units"]

    @property
    def residential_land(self) -> gpd.GeoDataFrame:
        return self.layers["residential_land"]

    def info(self) -> dict[str, Any]:
        """What the bundle holds, as ``cityos info --json`` prints it: layer and category counts,
        registers, CRS, extent, date, sources, warnings and attribution."""
        m = self.manifest
        return {
            "path": str(self.path),
            "schema_version": m["schema_version"],
            "layers": {name: len(frame) for name, frame in self.layers.items()},
            "facility_categories": dict(sorted(self.facilities["category"].value_counts().items())),
            "registers": {name: len(t) for name, t in self.registers.items()},
            "crs": self.crs,
            "bbox": m["bbox"],
            "as_of": m.get("as_of"),
            "as_of_source": m.get("as_of_source"),
            "sources": [
                {
                    k: s[k]
                    for k in ("kind", "path", "sha256", "replication_timestamp", "newest_object")
                    if k in s
                }
                for s in m.get("sources", [])
            ],
            "warnings": m.get("warnings", []),
            "attribution": m.get("attribution", []),
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v)}" for k, v in self.layers.items())
        return f"<Bundle {self.path} crs={self.crs} {counts}>"


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load a city bundle and validate every layer against its schema.

    Raises
    ------
    BundleError
        When the folder is not a bundle, is from another schema version, or a layer breaks its
        schema (the message names the layer and the column).
    """
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(
            f"{root}: not a city bundle (no manifest.json); create one with `cityos import`"
        )
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{manifest_path}: unreadable manifest ({exc}); re-create the bundle"
        ) from exc
    if not isinstance(manifest, dict):
        raise BundleError(
            f"{manifest_path}: not a bundle manifest (a JSON object); re-create the bundle"
        )
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{root}: bundle schema version {version}, this cityos reads version {SCHEMA_VERSION}; "
            "re-create the bundle with `cityos import`"
        )
    _check_manifest(manifest, manifest_path)
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in LAYER_SCHEMAS:
        file = root / f"{name}.parquet"
        if not file.is_file():
            raise BundleError(
                f"{root}: layer '{name}' is missing ({file.name}); re-create the bundle"
            )
        try:
            frame = gpd.read_parquet(file)
        except Exception as exc:  # pyarrow raises many types for damaged files
            raise BundleError(
                f"{file}: layer '{name}' is unreadable ({exc}); re-create the bundle"
            ) from exc
        for col in ADDED_COLUMNS.get(name, ()):  # a bundle written before the column existed
            if col not in frame.columns:
                frame.insert(
                    len(frame.columns) - 1, col, pd.Series([None] * len(frame), dtype=object)
                )
        validate_layer(name, frame, where=f"{root}: ")
        layers[name] = frame
    registers: dict[str, pd.DataFrame] = {}
    for reg in manifest.get("registers", {}):
        file = root / "registers" / f"{reg}.parquet"
        if not file.is_file():
            raise BundleError(f"{root}: register '{reg}' is missing ({file}); re-create the bundle")
        try:
            registers[reg] = pd.read_parquet(file)
        except Exception as exc:  # pyarrow raises many types for damaged files
            raise BundleError(
                f"{file}: register '{reg}' is unreadable ({exc.__class__.__name__}); re-create the bundle"
            ) from exc
    return Bundle(root, manifest, layers, registers)


def _check_manifest(manifest: Mapping[str, Any], where: Path) -> None:
    """Every problem of a manifest's ``crs``, ``bbox`` and ``as_of`` in one :class:`BundleError`."""
    problems = []
    crs = manifest.get("crs")
    if not isinstance(crs, str) or not crs:
        problems.append(f"'crs' is {json.dumps(crs)}, not a projected CRS such as \"EPSG:32650\"")
    else:
        try:
            parsed = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError:
            problems.append(f"'crs' {crs!r} is not a known CRS")
        else:
            units = {str(a.unit_name).lower() for a in parsed.axis_info}
            if not parsed.is_projected or not units <= {"metre", "meter"}:
                problems.append(f"'crs' {crs!r} is not a projected CRS in metres")
    box = manifest.get("bbox")
    if not (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
    ):
        problems.append(f"'bbox' is {json.dumps(box)}, not four numbers")
    if problems:
        raise BundleError(
            f"{where}: damaged manifest: {'; '.join(problems)}; re-create the bundle with `cityos import`"
        )


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8")


def write_bundle(
    out: str | os.PathLike[str],
    layers: Mapping[str, gpd.GeoDataFrame | FlatLayer],
    manifest: Mapping[str, Any],
    *,
    registers: Mapping[str, pd.DataFrame] | None = None,
    force: bool = False,
) -> Bundle:
    """Write a bundle atomically: into a temporary sibling folder, then renamed into place.

    Every layer of :data:`LAYER_SCHEMAS` must be given (empty layers are written empty) and is
    validated first. With ``force=False`` an existing ``out`` is an :class:`OutputExistsError`;
    with ``force=True`` it is replaced only after the new bundle is complete. Returns the
    written bundle: the layers given, not re-read, but a :class:`FlatLayer`'s, read from its
    file when first asked for.
    """
    target = Path(out)
    missing = set(LAYER_SCHEMAS) - set(layers)
    if missing:
        raise BundleError(f"cannot write bundle: layers {sorted(missing)} not given")
    registers = dict(registers or {})
    for name in registers:
        if not _REGISTER_NAME.fullmatch(name):
            raise BundleError(f"register name {name!r}: use letters, digits, '_' or '-'")
    for name in LAYER_SCHEMAS:
        layer = layers[name]
        if isinstance(layer, FlatLayer):
            validate_flat_layer(name, layer)
        else:
            validate_layer(name, layer)
    full = {"schema_version": SCHEMA_VERSION, **manifest, "registers": sorted(registers)}

    def write(name: str, tmp: Path) -> None:
        layer = layers[name]
        if isinstance(layer, FlatLayer):
            layer.write(tmp / f"{name}.parquet")
        else:
            layer.to_parquet(tmp / f"{name}.parquet", index=False)

    with atomic_folder(target, force=force, kind="bundle") as tmp:
        # Arrow and GEOS let the threads run together: the buildings beside the rest
        order = sorted(LAYER_SCHEMAS, key=lambda n: -len(layers[n]))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda n: write(n, tmp), order))
        if registers:
            (tmp / "registers").mkdir()
            for name, table in registers.items():
                table.to_parquet(tmp / "registers" / f"{name}.parquet", index=False)
        _write_json(tmp / "manifest.json", full)
    frames = {n: v for n, v in layers.items() if not isinstance(v, FlatLayer)}
    lazy = {n: target / f"{n}.parquet" for n, v in layers.items() if isinstance(v, FlatLayer)}
    return Bundle(target, full, Layers(frames, lazy, list(layers)), registers)


class Layers(MutableMapping[str, gpd.GeoDataFrame]):
    """Layer name → GeoDataFrame, some read from their bundle files when first asked for (the
    layers :func:`write_bundle` wrote from a :class:`FlatLayer`)."""

    def __init__(
        self,
        frames: Mapping[str, gpd.GeoDataFrame],
        lazy: Mapping[str, Path],
        order: Sequence[str] = (),
    ) -> None:
        self._frames = dict(frames)
        self._lazy = dict(lazy)
        names = [*order, *frames, *lazy]
        self._names = list(dict.fromkeys(n for n in names if n in frames or n in lazy))

    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        if name in self._lazy:
            self._frames[name] = gpd.read_parquet(self._lazy.pop(name))
        return self._frames[name]

    def __setitem__(self, name: str, frame: gpd.GeoDataFrame) -> None:
        self._lazy.pop(name, None)
        if name not in self._frames:
            self._names.append(name)
        self._frames[name] = frame

    def __delitem__(self, name: str) -> None:
        self._lazy.pop(name, None)
        self._frames.pop(name)
        self._names.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)
