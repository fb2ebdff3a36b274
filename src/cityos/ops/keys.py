"""API keys with roles: created once (the key is printed, only its SHA-256 is stored), listed,
revoked, and checked on every write.

Roles: ``intake`` (the hotline's operators: Open311 POST, answers, callbacks), ``dispatcher``
(classification, dispatch, returns, extensions, merges), ``department:CODE`` (the handling
department CODE: sign, start, handle, ask for a return or an extension; reads its reporters'
contact data), ``sensor`` (a monitoring system or gateway: SensorThings writes, observations)
and ``admin`` (everything).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from cityos.errors import InputError
from cityos.ops.models import ApiKey

__all__ = ["ROLE_PATTERN", "KeyInfo", "create_key", "find_key", "list_keys", "revoke_key"]

ROLE_PATTERN = re.compile(r"intake|dispatcher|sensor|inspector|admin|department:[A-Za-z0-9_.:\-]+")


@dataclass(frozen=True)
class KeyInfo:
    """A key as the service sees it: its name and role (never the key)."""

    name: str
    role: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create_key(session: Session, name: str, role: str) -> str:
    """Store a new key's hash under ``name`` with ``role``; returns the key (shown once).

    Raises
    ------
    InputError
        An unknown role or a name already used.
    """
    if not ROLE_PATTERN.fullmatch(role):
        raise InputError(
            f"--role {role}: use intake, dispatcher, department:CODE, sensor, inspector or admin"
        )
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise InputError(f"--name {name}: a key of that name exists; revoke it or choose another")
    key = "cos_" + secrets.token_urlsafe(24)
    session.add(
        ApiKey(name=name, role=role, key_hash=_hash(key), prefix=key[:10], created_at=_now())
    )
    return key


_BY_HASH = select(ApiKey.name, ApiKey.role, ApiKey.revoked_at).where(
    ApiKey.key_hash == bindparam("h")
)


def find_key(session: Session | Connection, key: str | None) -> KeyInfo | None:
    """The live key matching ``key`` (None for no key, a wrong or a revoked one)."""
    if not key:
        return None
    conn = session.connection() if isinstance(session, Session) else session
    row = conn.execute(_BY_HASH, {"h": _hash(key)}).first()
    if row is None or row.revoked_at is not None:
        return None
    return KeyInfo(row.name, row.role)


def list_keys(session: Session) -> list[dict[str, object]]:
    """Every key: name, role, prefix, created and revoked (never the key or its hash)."""
    rows = session.scalars(select(ApiKey).order_by(ApiKey.id))
    return [
        {"name": r.name, "role": r.role, "prefix": r.prefix, "created": r.created_at.isoformat(),
         "revoked": r.revoked_at.isoformat() if r.revoked_at else None}
        for r in rows
    ]  # fmt: skip


def revoke_key(session: Session, name: str) -> None:
    """Revoke the key ``name``; it stops working at once."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise InputError(f"--name {name}: no such key; `cityos keys list` shows them")
    row.revoked_at = _now()
