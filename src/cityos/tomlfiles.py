"""Built-in TOML settings with a city's own file merged over them (weights, policy numbers)."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from cityos.errors import ConfigError

__all__ = ["merge", "read_with_defaults"]


def merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``, table by table (nested tables merged, values replaced)."""
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_with_defaults(
    package: str,
    name: str,
    path: str | os.PathLike[str] | None,
    *,
    what: str,
    merge_own: bool = True,
) -> tuple[dict[str, Any], str]:
    """The built-in ``package/name`` TOML, with the file ``path`` (if given) merged over it (or,
    with ``merge_own=False``, instead of it: a catalogue replaces the built-in one), and where it
    came from. Raises :class:`ConfigError` naming the file for a missing or invalid file or an
    unknown table."""
    base = tomllib.loads(resources.files(package).joinpath(name).read_text("utf-8"))
    if path is None:
        return base, f"built-in {name}"
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such {what} file; copy {package.replace('.', '/')}/{name}")
    try:
        own = tomllib.loads(p.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    unknown = set(own) - set(base)
    if unknown:
        raise ConfigError(f"{p}: unknown tables {sorted(unknown)}; use {', '.join(sorted(base))}")
    return (merge(base, own) if merge_own else own), str(p)
