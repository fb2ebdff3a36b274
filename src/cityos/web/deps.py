"""What every route shares: the operations context (hotline settings, sessions) and the key."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from cityos.errors import ForbiddenError
from cityos.ops.hotline import Hotline
from cityos.ops.keys import KeyInfo, find_key
from cityos.ops.rates import RateRule

__all__ = ["KeyDep", "Ops", "OpsDep", "get_ops", "key_from", "require_key"]

T = TypeVar("T")


@dataclass
class Ops:
    """The service's state: the hotline, a session factory over the store and the store's
    writers.

    Every write transaction runs on one of ``writers`` threads (one for SQLite, which has a
    single writer anyway): queued in order there, writes never wait in SQLite's busy handler,
    whose sleeps made the slowest POSTs take a second and more; the event loop goes on serving
    reads meanwhile (WAL readers do not wait for the writer).
    """

    hotline: Hotline
    sessions: sessionmaker[Session]
    engine: Engine
    rate_rule: RateRule
    writers: int = 1
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for Core reads (no ORM objects: a page of requests is rows)."""
        with self.engine.connect() as conn:
            yield conn

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a writer thread; what it returns (or raises)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.writers, thread_name_prefix="cityos-writer")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    def close(self) -> None:
        """Finish the queued writes, then stop the writers and close the store's connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
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


def key_from(session: Session, key: str | None) -> KeyInfo | None:
    return find_key(session, key)


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
