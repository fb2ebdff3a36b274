"""What every route shares: the operations context (hotline settings, sessions) and the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import pandas as pd
from fastapi import Depends, Header, Request
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from cityos.errors import ForbiddenError
from cityos.lifelines.cap import CapSettings
from cityos.lifelines.monitor import Monitor
from cityos.ops.hotline import Hotline
from cityos.ops.keys import KeyInfo, find_key
from cityos.ops.rates import RateRule
from cityos.web.writer import Writer

__all__ = ["KeyDep", "Ops", "OpsDep", "get_ops", "require_key"]

T = TypeVar("T")


@dataclass
class Ops:
    """The service's state: the hotline, a session factory over the store and the store's
    writer (:mod:`cityos.web.writer`: every write queued on one thread, committed in groups;
    the event loop goes on serving reads meanwhile, WAL readers do not wait for the writer)."""

    hotline: Hotline
    sessions: sessionmaker[Session]
    engine: Engine
    rate_rule: RateRule
    writer: Writer
    monitor: Monitor
    cap: CapSettings = field(default_factory=CapSettings)
    #: the bundle's building ids (inspections name one) and its housing-safety register
    building_ids: frozenset[str] = frozenset()
    housing_safety: pd.DataFrame | None = None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for Core reads (no ORM objects: a page of requests is rows)."""
        with self.engine.connect() as conn:
            yield conn

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` on the writer, committed; what it returns (or raises)."""
        return await self.writer.write(fn, *args)

    def close(self) -> None:
        """Finish the queued writes, then stop the writer and close the store's connections."""
        self.writer.close()
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session rolled back on error (callers commit what they acknowledge)."""
        s = self.sessions()
        try:
            yield s
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()


async def get_ops(request: Request) -> Ops:
    """The service's state. Routes and dependencies are ``async`` and call the store directly:
    its queries take well under a millisecond on loopback, less than a hop to a worker thread."""
    ops: Ops = request.app.state.ops
    return ops


OpsDep = Annotated[Ops, Depends(get_ops)]


async def require_key(
    ops: OpsDep,
    x_api_key: Annotated[str | None, Header(description="An API key (cityos keys create)")] = None,
) -> KeyInfo:
    """The caller's key from the ``X-API-Key`` header; 403 without a valid one."""
    with ops.reading() as conn:
        key = find_key(conn, x_api_key)
    if key is None:
        raise ForbiddenError("a valid X-API-Key header is required")
    return key


KeyDep = Annotated[KeyInfo, Depends(require_key)]
