"""The store's writer commits queued writes in groups: one commit for many, a failing write
undone alone (its savepoint), every caller told only after the commit; on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cityos.ops.models import ApiKey
from cityos.ops.store import connect, upgrade
from cityos.web.writer import Writer


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    else:
        from tests.pg import fresh_database

        url = fresh_database(request.getfixturevalue("pg_cluster"), "writer")
    e = connect(url)
    upgrade(e)
    return e


def add_key(session: Session, name: str, pause: float = 0.0) -> str:
    time.sleep(pause)  # the first write holds the writer while the others queue
    session.add(ApiKey(name=name, role="intake", key_hash=name.ljust(64, "0"), prefix=name[:10],
                       created_at=dt.datetime(2026, 12, 1)))  # fmt: skip
    session.flush()
    return name


def test_a_group_commits_once_and_a_failure_stays_alone(engine: Engine) -> None:
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    writer = Writer(sessionmaker(engine, expire_on_commit=False))

    async def run() -> list[object]:
        first = asyncio.ensure_future(writer.write(add_key, "k00", 0.3))
        await asyncio.sleep(0.05)  # k00 is being written; the rest queue behind it
        # k05 twice: the second breaks the unique name and must fail alone
        rest = [writer.write(add_key, f"k{i:02d}") for i in [*range(1, 20), 5]]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(run())
    writer.close()
    assert results[:20] == [f"k{i:02d}" for i in range(20)]
    assert isinstance(results[20], IntegrityError)
    assert len(commits) == 2  # k00 alone, then the 20 queued behind it in one commit
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ApiKey)) == 20
    engine.dispose()
