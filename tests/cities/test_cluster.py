"""``cityos batch`` from the command line against a real ``dask scheduler`` and two ``dask
worker`` processes on loopback: one worker is killed (SIGKILL) while it runs a city and the batch
still finishes with every city exactly once. Plus Ctrl-C, ``--resume`` and bad arguments."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

from cityos.cities.cluster import quiet_interrupt
from cityos.cli import main
from tests.cities.conftest import big_toy_city
from tests.conftest import TOY_CRS, expect_warnings
from tests.web.conftest import free_port

BIN = Path(sys.executable).parent
CITYOS = [str(BIN / "cityos")]


def _wait_for(predicate: object, timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A ``dask scheduler`` and two single-thread ``dask worker`` processes without nannies
    (so the worker's pid is the process running the task), offering 4 GB of ``memory``."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = (tmp_path / "dask.log").open("wb")
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], stdout=logs, stderr=logs)]  # fmt: skip
    workers = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "worker",
                address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--resources",
                "memory=4e9",
                "--name",
                f"w{i}",
            ],
            stdout=logs,
            stderr=logs,
        )
        for i in range(2)
    ]
    procs += workers
    try:
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        logs.close()


def _running(out: Path) -> dict[str, object] | None:
    for f in (out / ".work").glob("*/running.json"):
        try:
            return json.loads(f.read_text("utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            continue
    return None


def test_a_killed_worker_loses_no_city(
    province: Path, tmp_path: Path, scheduler: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, workers = scheduler
    out = tmp_path / "out"
    run = subprocess.Popen([*CITYOS, "batch", str(province), "--out", str(out), "--scheduler",
                            address, "--retries", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    running = _wait_for(lambda: _running(out), 120, "a city running on a worker")
    victim = int(running["pid"])  # type: ignore[index, call-overload]
    assert victim in {w.pid for w in workers}
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, stderr.decode()  # the broken city failed, nothing else
    assert f"scheduler {address} with 2 workers; dashboard" in stderr.decode()
    table = pd.read_csv(out / "cities.csv", encoding="utf-8-sig")
    assert table["city_id"].tolist() == ["toy_w", "toy_c", "hel", "broken"]  # each once
    assert table["status"].tolist() == ["ok", "ok", "ok", "failed"]
    killed = table[table["city_id"] == running["city_id"]].iloc[0]
    assert not str(killed["worker"]).endswith(f":{victim}")  # finished on the other worker
    indicators = pd.read_parquet(out / "all_indicators.parquet")
    for cid in ("toy_w", "toy_c", "hel"):
        own = pd.read_parquet(out / cid / "results" / "indicators.parquet")
        assert (indicators["city_id"] == cid).sum() == len(own)
    assert not (out / ".work").exists()
    assert "3 of 4 cities done, 1 failed" in stdout.decode()


def test_ctrl_c_keeps_finished_cities_and_resume_does_the_rest(
    province: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # a native crash prints its stack (faulthandler) into the failure message
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    run = subprocess.Popen([*CITYOS, "batch", str(province), "--out", str(out), "--scheduler",
                            "sequential"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
    _wait_for(lambda: (out / "toy_c" / "city.json").is_file(), 120, "the second city")
    # interrupted while the third city runs (it has started: its work folder is there); the
    # second city's record alone left a race with a fast third city
    _wait_for(lambda: any((out / ".work").glob("hel.*")), 120, "the third city to start")
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr.decode(errors="replace")[-4000:]
    assert stderr.decode().strip().endswith("interrupted; nothing half-written was left behind")
    record = json.loads((out / "batch.json").read_text("utf-8"))
    status = {c["city_id"]: c["status"] for c in record["cities"]}
    assert status["toy_w"] == status["toy_c"] == "ok"
    assert status["broken"] == "interrupted"
    assert not any((out / ".work").glob("*"))
    for cid in ("toy_w", "toy_c"):
        assert (out / cid / "report.html").is_file()
    done = subprocess.run([*CITYOS, "batch", str(province), "--out", str(out), "--scheduler",
                           "sequential", "--resume", "-q"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1
    assert "(2 unchanged, not run again)" in done.stdout
    table = pd.read_csv(out / "cities.csv", encoding="utf-8-sig")
    assert table["resumed"].tolist() == [True, True, False, False]
    assert table["status"].tolist() == ["ok", "ok", "ok", "failed"]


def test_cli_refuses_clearly(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "batch.json").write_text("{}", "utf-8")
    assert main(["batch", str(province), "--out", str(tmp_path / "out"), "--scheduler",
                 "sequential"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --resume" in err
    assert (
        main(["batch", str(province), "--out", str(tmp_path / "o2"), "--memory-limit", "lots"]) == 2
    )
    assert "a size such as 6GiB" in capsys.readouterr().err
    assert main(["batch", str(province), "--out", str(tmp_path / "o3"), "--scheduler", "yarn"]) == 2
    assert "use local, sequential or a scheduler address" in capsys.readouterr().err
    port = free_port()  # nothing listens there
    assert main(["batch", str(province), "--out", str(tmp_path / "o4"), "--scheduler",
                 f"tcp://127.0.0.1:{port}"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no dask scheduler answers there" in err
    (tmp_path / "bad.csv").write_text("city_id,name\n", "utf-8")
    assert main(["batch", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o5")]) == 2
    assert "no cities; add one row per city" in capsys.readouterr().err


def test_out_of_memory_fails_that_city_alone(province: Path, tmp_path: Path) -> None:
    """One worker of 440 MB: the 100,000-building city outgrows it and the nanny kills the
    worker; with no second chance allowed that city is recorded as failed with the reason, and
    the toy cities (about 0.3 GB), which waited in the batch, finish on the restarted worker."""
    import dask
    from distributed import LocalCluster

    import cityos
    from cityos.cities import city_from_mapping, read_cities

    big = city_from_mapping({"city_id": "big", "name": "大城", "osm": str(big_toy_city(tmp_path / "big.osm")),
                             "options": f"measure_crs={TOY_CRS}"})  # fmt: skip
    toys = [c for c in read_cities(province) if c.city_id.startswith("toy")]
    limit = 440_000_000
    settings = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.worker.memory.pause": False,
    }
    with (
        dask.config.set(settings),
        LocalCluster(n_workers=1, threads_per_worker=1, memory_limit=limit, resources={"memory": limit},
                     dashboard_address="127.0.0.1:0", silence_logs=50) as cluster,
        Client(cluster) as client,
        expect_warnings(r"3 cities \(big, toy_w, toy_c\) need more memory than any worker"),
    ):  # fmt: skip
        result = cityos.batch([big, *toys], tmp_path / "out", client=client)
    status = {r["city_id"]: r["status"] for r in result.records}
    assert status == {"big": "failed", "toy_w": "ok", "toy_c": "ok"}
    assert "died (out of memory or killed)" in result.records[0]["error"]
    assert not (tmp_path / "out" / "big").exists()


def test_ctrl_c_in_a_terminal_stops_the_cluster_quietly(province: Path, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, the cluster's workers too: the batch
    ends with exit 130 and one line, no worker prints a traceback, no process is left."""
    out = tmp_path / "out"
    run = subprocess.Popen([*CITYOS, "batch", str(province), "--out", str(out), "--workers", "2",
                            "--dashboard", "127.0.0.1:0"], start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(lambda: any(out.glob("*/city.json")), 120, "a finished city")
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    text = stderr.decode()
    assert run.returncode == 130
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.strip().endswith("cityos: interrupted; nothing half-written was left behind")

    def gone() -> bool:
        try:
            os.killpg(run.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(gone, 30, "the worker processes to end")
    for record in json.loads((out / "batch.json").read_text("utf-8"))["cities"]:
        if record["status"] == "ok":
            assert (out / record["city_id"] / "report.html").is_file()


def _record_of(source: str, filename: str) -> logging.LogRecord:
    """tornado's log record of the exception ``cancel()`` raises, defined in ``filename``."""
    space: dict[str, object] = {}
    exec(compile(source, filename, "exec"), space)
    try:
        space["cancel"]()  # type: ignore[operator]
    except NameError:
        info = sys.exc_info()
    return logging.LogRecord("tornado.application", logging.ERROR, filename, 1,
                             "Exception in callback", None, info)  # fmt: skip


@pytest.mark.parametrize(("filename", "kept"), [
    (os.path.join("site-packages", "distributed", "utils.py"), False),  # distributed's race
    (os.path.join("site-packages", "mine", "utils.py"), True),  # anyone else's NameError
])  # fmt: skip
def test_only_distributeds_ctrl_c_race_is_dropped(filename: str, kept: bool) -> None:
    # distributed.utils.sync: cancel() reads `future` before the interrupted wait assigned it
    source = "def outer():\n    def cancel():\n        return future\n    return cancel\ncancel = outer()\n"
    logger = logging.getLogger("tornado.application")
    record = _record_of(source, filename)
    with quiet_interrupt():
        assert all(f.filter(record) for f in logger.filters) is kept
    assert not logger.filters  # removed again
    plain = logging.LogRecord("tornado.application", logging.ERROR, "x", 1, "other", None, None)
    with quiet_interrupt():
        assert all(f.filter(plain) for f in logger.filters)
