"""The subscriber acknowledges a message only once it is stored: against Debian's mosquitto, a
message delivered to a process that dies before storing it, or whose store fails, is
delivered again (marked DUP) to the same session; one that fails every time is dropped at
last; and a redelivered message's observations already stored are not stored twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from paho.mqtt import publish
from sqlalchemy import func, select

from cityos.lifelines.entities import ENTITY_SETS
from cityos.lifelines.ingest import not_stored
from cityos.lifelines.models import StaObservation
from cityos.lifelines.mqtt import STORE_ATTEMPTS, IngestStats, run_subscriber
from cityos.lifelines.sta import create
from cityos.ops.store import connect, upgrade
from tests.lifelines.wells import well
from tests.mqtt import mosquitto_broker

TOPIC = "v1.1/Datastreams(7)/Observations"
READING = {"result": 12.5, "phenomenonTime": "2026-12-01T08:00:00Z"}


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with mosquitto_broker() as url:
        yield url


def send(broker: str, payload: dict[str, Any]) -> None:
    host, port = broker.removeprefix("mqtt://").split(":")
    publish.single(TOPIC, json.dumps(payload), qos=1, hostname=host, port=int(port))


async def subscribe_until(
    broker: str, client_id: str, store: Any, done: asyncio.Event, stats: IngestStats
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_subscriber(broker, store, stats, stop, client_id))
    try:
        await asyncio.wait_for(done.wait(), timeout=20)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=40)


async def until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"not {what} within {timeout} s"
        await asyncio.sleep(0.02)


async def connected(stats: IngestStats) -> None:
    await until(lambda: stats.connected, "connected")


def session_kept(broker: str, client_id: str) -> bool:
    """Whether the broker still holds a session for ``client_id`` (CONNACK's session present;
    this probe's own session ends with its connection)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = broker.removeprefix("mqtt://").split(":")
    answer: list[bool] = []
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    probe.on_connect = lambda _c, _u, flags, _r, _p: answer.append(flags.session_present)
    probe.connect(host, int(port), clean_start=False)
    deadline = time.monotonic() + 10
    while not answer and time.monotonic() < deadline:
        probe.loop(timeout=0.1)
    probe.disconnect()
    assert answer, "no CONNACK"
    return answer[0]


def test_a_message_the_process_died_holding_comes_again(broker: str) -> None:
    # a subscriber that takes the message and dies (SIGKILL) before it is stored
    script = textwrap.dedent(f"""
        import asyncio, sys
        from cityos.lifelines.mqtt import IngestStats, run_subscriber
        async def store(stream, items, redelivered):
            print("got", flush=True)
            await asyncio.sleep(3600)
        async def main():
            stats = IngestStats()
            task = asyncio.create_task(run_subscriber({broker!r}, store, stats, asyncio.Event(), "crash-1"))
            while not stats.connected:
                await asyncio.sleep(0.02)
            print("ready", flush=True)
            await task
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        send(broker, READING)
        assert proc.stdout.readline().strip() == "got"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()

    calls: list[tuple[int, list[dict[str, Any]], bool]] = []

    async def run() -> None:
        done = asyncio.Event()

        async def store(stream: int, items: list[dict[str, Any]], redelivered: bool) -> int:
            calls.append((stream, items, redelivered))
            done.set()
            return len(items)

        await subscribe_until(broker, "crash-1", store, done, IngestStats())

    asyncio.run(run())
    assert calls == [(7, [READING], True)]


def test_a_failed_store_is_delivered_again_and_a_hopeless_one_dropped(broker: str) -> None:
    calls: list[bool] = []
    stats = IngestStats()

    async def run() -> None:
        done = asyncio.Event()

        async def store(stream: int, items: list[dict[str, Any]], redelivered: bool) -> int:
            calls.append(redelivered)
            if items[0]["result"] == 1.0 and len(calls) == 1:
                raise RuntimeError("the store went away")
            if items[0]["result"] == 2.0:
                if len(calls) == 2 + STORE_ATTEMPTS:
                    asyncio.get_running_loop().call_later(1.0, done.set)
                raise RuntimeError("this one never stores")
            return 1

        task = asyncio.create_task(subscribe_until(broker, "fail-1", store, done, stats))
        await connected(stats)
        send(broker, {**READING, "result": 1.0})
        await until(lambda: len(calls) >= 2, "delivered again")
        send(broker, {**READING, "result": 2.0})
        await task

    asyncio.run(run())
    # 1.0: failed once, stored when it came again (DUP); 2.0: failed STORE_ATTEMPTS times
    assert calls == [False, True, False] + [True] * (STORE_ATTEMPTS - 1)
    assert (stats.stored, stats.dropped["store failed"]) == (1, 1)


def test_stopping_on_a_redelivered_message_leaves_no_session(broker: str) -> None:
    # a stored message stops the service; the redelivered one comes before the SUBACK, and
    # the session must still be ended (unsubscribed, DISCONNECT sent before the network thread
    # stops): a session left behind keeps its share of the shared subscription's messages
    rounds = 6

    async def one(client_id: str, value: float) -> None:
        stats, stop, calls = IngestStats(), asyncio.Event(), []

        async def store(stream: int, items: list[dict[str, Any]], redelivered: bool) -> int:
            calls.append(redelivered)
            if not redelivered:
                raise RuntimeError("fails once")
            stop.set()
            return 1

        task = asyncio.create_task(run_subscriber(broker, store, stats, stop, client_id))
        await connected(stats)
        await asyncio.to_thread(send, broker, {**READING, "result": value})
        await asyncio.wait_for(task, timeout=20)
        assert calls == [False, True]

    for i in range(rounds):
        asyncio.run(one(f"stop-{i}", float(i)))
        assert not session_kept(broker, f"stop-{i}")

    got: list[float] = []

    async def after() -> None:
        stats, stop = IngestStats(), asyncio.Event()

        async def store(stream: int, items: list[dict[str, Any]], redelivered: bool) -> int:
            got.append(items[0]["result"])
            return 1

        task = asyncio.create_task(run_subscriber(broker, store, stats, stop, "after"))
        await connected(stats)
        for i in range(rounds):
            await asyncio.to_thread(send, broker, {**READING, "result": 100.0 + i})
        await until(lambda: len(got) == rounds, f"all {rounds} delivered", timeout=10)
        stop.set()
        await asyncio.wait_for(task, timeout=20)

    asyncio.run(after())
    assert got == [100.0 + i for i in range(rounds)]


def test_a_redelivered_message_is_not_stored_twice(blank_store: str) -> None:
    engine = connect(blank_store)
    upgrade(engine)
    thing = well()
    first = {"result": 30, "phenomenonTime": "2026-12-01T16:00:00+08:00"}
    with engine.begin() as conn:
        create(conn, ENTITY_SETS["Things"], thing, lambda x, y: {})
        create(conn, ENTITY_SETS["Observations"], {**first, "Datastream": {"@iot.id": 1}},
               lambda x, y: {})  # fmt: skip
        again: list[dict[str, Any]] = [
            {"result": 30.0, "phenomenonTime": "2026-12-01T08:00:00Z"},  # the same instant: stored
            {"result": 31.0, "phenomenonTime": "2026-12-01T08:00:00Z"},  # another result
            {"result": 30.0, "phenomenonTime": "2026-12-01T08:01:00Z"},  # another time
            {"result": 30.0},  # stamped on arrival: cannot be matched
            {"result": 30.0, "phenomenonTime": "yesterday"},  # refused later, with its reason
        ]
        assert not_stored(conn, 1, again) == again[1:]
        assert not_stored(conn, 2, again[:1]) == again[:1]  # another datastream
        count = conn.execute(select(func.count()).select_from(StaObservation)).scalar_one()
        assert count == 1
        when = conn.execute(select(StaObservation.phenomenon_time)).scalar_one()
        assert when == dt.datetime(2026, 12, 1, 8, 0)
    engine.dispose()
