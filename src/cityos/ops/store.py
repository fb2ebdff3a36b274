"""The operations store: engines, sessions and migrations.

``sqlite:///PATH`` (the default, a file beside the bundle) runs in WAL mode with
``synchronous=FULL``, so a request acknowledged to a client survives a crash of the process or the
machine; ``postgresql+psycopg://…`` uses PostgreSQL transactions. The schema is Alembic
migrations shipped in the package: :func:`upgrade` brings a store to the newest revision
(``cityos db upgrade``), :func:`check_current` refuses an out-of-date one with the command to run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cityos.errors import ConfigError, InputError

__all__ = ["check_current", "connect", "default_url", "head_revision", "session_scope", "upgrade"]


def default_url(bundle: Path) -> str:
    """The default store of a bundle: ``ops.sqlite`` beside it (``BUNDLE.ops.sqlite``)."""
    return f"sqlite:///{bundle.resolve().parent / (bundle.name + '.ops.sqlite')}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # the driver's own transaction handling off: SQLAlchemy says BEGIN (_sqlite_begin), so
    # savepoints nest inside the transaction (the service's writer commits writes in groups)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, ``synchronous=FULL``, foreign keys and a busy
    timeout on every connection.

    Raises
    ------
    InputError
        The URL is not a database URL SQLAlchemy knows.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise InputError(
            f"--db {url}: not a usable database URL ({exc}); use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from exc
    return engine


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("cityos.ops") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest schema revision this cityos ships."""
    head = ScriptDirectory.from_config(_config(connect("sqlite://"))).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the store (None: an empty store)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise InputError(f"cannot open the store {engine.url!r} ({exc.orig}); check --db") from exc


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the store to the newest revision; returns (before, after)."""
    before = current_revision(engine)
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def check_current(engine: Engine, url: str) -> None:
    """Refuse a store whose schema is not the newest, saying which command to run.

    Raises
    ------
    ConfigError
        The store is empty or at an older (or unknown) revision.
    """
    have, want = current_revision(engine), head_revision()
    if have != want:
        state = "empty" if have is None else f"at schema revision {have}"
        raise ConfigError(
            f"{url}: the operations store is {state}, this cityos needs {want}; "
            f"run `cityos db upgrade --db {url}` first"
        )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session committed when the block succeeds and rolled back when it fails."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
