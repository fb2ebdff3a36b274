"""The store's writer: every write of the service, queued, run on its own thread and committed in
groups (group commit).

A write is a function of a session. The writer takes what is queued (up to :data:`MAX_GROUP`),
runs each in its own savepoint — one that fails is rolled back alone and its caller gets its
error — and commits the group once: one disk flush for many requests. A caller hears back only
after that commit, so what a client was acknowledged survives a crash. With a lock file (SQLite
served by several worker processes) the group also holds an exclusive lock on it, so the
processes' writers take turns at once instead of polling SQLite's lock, whose back-off sleeps
made the slowest requests take a second and more.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

__all__ = ["MAX_GROUP", "Writer"]

T = TypeVar("T")
#: the most writes committed together
MAX_GROUP = 64


@dataclass
class _Job(Generic[T]):
    fn: Callable[..., T]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


class Writer:
    """One writer thread over ``sessions``; ``lock``: a file to hold exclusively while writing."""

    def __init__(self, sessions: sessionmaker[Session], lock: Path | None = None) -> None:
        self._sessions = sessions
        self._lock_path = lock
        self._lock_fd: int | None = None
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(session, *args)`` in the next group; what it returns (or raises), once the group
        is committed."""
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cityos-writer", daemon=True)
                self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, args, loop, future))
        return await future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[_Job[Any]]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        if self._lock_path is not None and self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        session = self._sessions()
        try:
            for job in group:
                savepoint = session.begin_nested()
                try:
                    result = job.fn(session, *job.args)
                    savepoint.commit()
                    outcomes.append((result, None))
                except Exception as exc:  # this write alone is undone; its caller hears why
                    savepoint.rollback()
                    outcomes.append((None, exc))
            session.commit()
        except Exception as exc:  # the commit failed: nothing of the group is stored
            session.rollback()
            outcomes = [(None, exc)] * len(group)
        finally:
            session.close()
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        for job, (result, error) in zip(group, outcomes, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
