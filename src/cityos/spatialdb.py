"""DuckDB with its spatial extension, taken from the ``duckdb-extension-spatial`` wheel (never
downloaded at run time): the columnar OSM reader and the dashboard's vector tiles use it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["connect", "spatial_extension"]


def spatial_extension() -> Path | None:
    """DuckDB's spatial extension from its wheel, built for the DuckDB installed; None without
    it. Found without importing DuckDB: a process that reads with pyosmium must not load
    DuckDB's library for nothing."""
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec("duckdb_extension_spatial")
    if (
        spec is None
        or not spec.submodule_search_locations
        or not importlib.util.find_spec("duckdb")
    ):
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    version = importlib.metadata.version("duckdb")
    return next((root / "extensions" / f"v{version}").rglob("*.duckdb_extension"), None)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the spatial extension loaded (signed extensions only).

    Raises
    ------
    RuntimeError
        The extension's wheel is not installed.
    """
    import duckdb

    ext = spatial_extension()
    if ext is None:
        raise RuntimeError(
            "DuckDB's spatial extension is missing: pip install duckdb-extension-spatial"
        )
    con = duckdb.connect(config={"allow_unsigned_extensions": False})
    con.load_extension(str(ext))
    return con
