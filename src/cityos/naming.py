"""Name a mistaken name's closest known one, for one-line refusals ("'markets': did you mean
'market'?")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "unknown_names"]


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like ``name`` (difflib ratio ≥ 0.6), or None."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_names(names: Iterable[str], known: Iterable[str], *, most: int = 5) -> str:
    """``'markets' (did you mean 'market'?), 'x'`` for up to ``most`` unknown names."""
    pool = sorted(set(known))
    parts = []
    for name in sorted(set(names))[:most]:
        near = closest(name, pool)
        parts.append(f"{name!r} (did you mean {near!r}?)" if near else repr(name))
    return ", ".join(parts)
