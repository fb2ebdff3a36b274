"""A throwaway PostgreSQL cluster on a loopback port, for the store tests: Debian's PostgreSQL
binaries (``make test`` installs them), ``initdb`` into a temporary folder (as the ``postgres``
user when the tests run as root, which PostgreSQL refuses to), stopped and removed after."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fresh_database", "pg_bin", "throwaway_cluster"]


def pg_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    ctl = shutil.which("pg_ctl")
    return Path(ctl).resolve().parent if ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yield ``postgresql+psycopg://postgres@127.0.0.1:PORT/cityos`` of a fresh cluster in its
    own temporary folder (directly under the system's temporary folder, so that the ``postgres``
    user can reach it), removed afterwards."""
    binaries = pg_bin()
    if binaries is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="cityos-pg-"))
    data = root / "pgdata"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, env=env, cwd=root)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on", "start")  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            ok = subprocess.run([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                capture_output=True).returncode == 0  # fmt: skip
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        subprocess.run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                        "postgres", "cityos"], check=True, capture_output=True)  # fmt: skip
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/cityos"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, env=env, cwd=root)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """Create database ``name`` in the cluster of ``url``; returns its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"
