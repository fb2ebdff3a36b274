"""A register added to (or replaced in) an existing bundle: written next to the bundle's other
registers through a temporary file, the manifest updated the same way, and the version it
replaces kept under ``registers/history/NAME-<UTC time>.parquet`` with its manifest record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from cityos.bundle import Bundle
from cityos.outputs import atomic_file
from cityos.provenance import source_record

__all__ = ["add_register", "register_history"]


def add_register(bundle: Bundle, name: str, table: pd.DataFrame, source: Path) -> Path | None:
    """Put ``table`` in ``bundle`` as register ``name`` (the file it came from: ``source``);
    returns where the version it replaced was kept (None: there was none)."""
    root = Path(bundle.path)
    folder = root / "registers"
    folder.mkdir(exist_ok=True)
    target = folder / f"{name}.parquet"
    manifest = json.loads((root / "manifest.json").read_text("utf-8"))
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    kept: Path | None = None
    if target.exists():
        history = folder / "history"
        history.mkdir(exist_ok=True)
        kept = history / f"{name}-{now}.parquet"
        kept.write_bytes(target.read_bytes())
    with atomic_file(target) as tmp:
        table.to_parquet(tmp, index=False)
    record = source_record(source, "register", name=name, rows=len(table), added=now)
    old = [
        s
        for s in manifest.get("sources", [])
        if s.get("kind") == "register" and s.get("name") == name
    ]
    manifest["sources"] = [s for s in manifest.get("sources", []) if s not in old] + [record]
    if old and kept is not None:
        manifest.setdefault("register_history", []).extend(
            {**s, "kept_as": str(kept.relative_to(root))} for s in old
        )
    manifest["registers"] = sorted({*manifest.get("registers", []), name})
    with atomic_file(root / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
    return kept


def register_history(bundle: Bundle, name: str) -> list[dict[str, object]]:
    """The earlier versions of register ``name`` kept in the bundle, oldest first."""
    return [h for h in bundle.manifest.get("register_history", []) if h.get("name") == name]
