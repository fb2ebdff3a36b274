"""Where a bundle's data came from: one record per source file or folder, with its size,
modification time and SHA-256 checksum, so a number can be traced back to the exact input."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

__all__ = ["sha256_file", "source_record"]


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_record(path: Path, kind: str, **extra: Any) -> dict[str, Any]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stat_time = max(p.stat().st_mtime for p in files) if files else 0.0
    digest = (
        hashlib.sha256("".join(sha256_file(p) for p in files).encode()).hexdigest()
        if len(files) > 1
        else (sha256_file(files[0]) if files else "")
    )
    return {
        "kind": kind,
        "path": str(path.resolve()),
        "sha256": digest,
        "bytes": sum(p.stat().st_size for p in files),
        "modified": dt.datetime.fromtimestamp(stat_time, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{k: v for k, v in extra.items() if v is not None},
    }
