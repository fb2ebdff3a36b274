"""Observations over MQTT (``cityos serve … --mqtt mqtt://HOST:PORT``): a subscriber (MQTT 5,
paho-mqtt's network thread, the service's event loop) takes ``v1.1/Datastreams(ID)/Observations``
messages (one Observation, or a list of them, as SensorThings JSON) at QoS 1 and stores them
through the same writer and rules as HTTP.

A message is acknowledged only once it is committed, so one the broker delivered is never lost:
the session is persistent and what was not acknowledged is delivered again after a crash or a
lost connection; a redelivered message's observations already stored (same datastream,
phenomenonTime and result) are not stored twice. A message that cannot be stored — not JSON, an
unknown datastream, a result of the wrong type — is counted by reason, logged and acknowledged,
and the subscriber goes on. The subscription is shared (``$share/cityos/…``), so several worker
processes take turns rather than store each message twice; each has its own session
(:func:`claim_client_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import re
import socket
import tempfile
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from cityos.errors import CityosError, InputError

__all__ = [
    "IN_FLIGHT",
    "SESSION_SECONDS",
    "SUBSCRIPTION",
    "IngestStats",
    "claim_client_id",
    "parse_mqtt_url",
    "run_subscriber",
]

log = logging.getLogger("cityos.mqtt")
SUBSCRIPTION = "$share/cityos/v1.1/#"
#: messages delivered and not yet acknowledged at most (the Receive Maximum asked of the broker)
IN_FLIGHT = 256
#: how long the broker keeps the session (and the messages for it) while the service is down
SESSION_SECONDS = 86_400
#: a message whose store fails unexpectedly this many times is dropped (and logged) at last
STORE_ATTEMPTS = 3
_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d{1,10})\)/Observations$")
#: what stores a message's observations: (datastream id, observations, redelivered) → stored
Store = Callable[[int, list[dict[str, Any]], bool], Awaitable[int]]


@dataclass
class IngestStats:
    """What the subscriber did: messages received, observations (and messages) stored,
    messages dropped by reason, whether it is connected and its last error."""

    received: int = 0
    stored: int = 0
    stored_messages: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    connected: bool = False
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"received": self.received, "stored": self.stored,
                "stored_messages": self.stored_messages, "dropped": dict(self.dropped),
                "dropped_total": sum(self.dropped.values()), "connected": self.connected,
                "last_error": self.last_error}  # fmt: skip


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtt://HOST[:PORT]`` → (host, port).

    Raises
    ------
    InputError
        Another scheme or no host.
    """
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise InputError(f"--mqtt {url}: give mqtt://HOST:PORT (e.g. mqtt://127.0.0.1:1883)")
    return parts.hostname, parts.port or 1883


def decode(topic: str, payload: bytes) -> tuple[int, list[dict[str, Any]]]:
    """The datastream and the observations of one message.

    Raises
    ------
    InputError
        A topic that is not a datastream's observations, a payload that is not JSON, not an
        object or a list of objects.
    """
    m = _TOPIC.match(topic)
    if m is None:
        raise InputError(f"topic {topic!r} is not v1.1/Datastreams(ID)/Observations")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("payload is not JSON") from exc
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise InputError("payload must be an Observation object or a list of them")
    return int(m.group(1)), items


def claim_client_id(store_url: str) -> tuple[str, IO[str]]:
    """A client id for this process's MQTT session that the same store and host get again
    after a restart (so the broker hands back what it kept), and no other process of it has:
    ``cityos-<host>-<store digest>-<slot>``, the lowest slot whose lock file this process can
    lock. Keep the returned file open while the subscriber runs."""
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:10]
    folder = Path(tempfile.gettempdir()) / "cityos-mqtt"
    folder.mkdir(exist_ok=True)
    for slot in range(1024):
        lock = (folder / f"{digest}-{slot}.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return f"cityos-{socket.gethostname()[:40]}-{digest}-{slot}", lock
    raise CityosError(f"more than 1,024 MQTT subscribers on one store in {folder}")


class _Lost(Exception):
    """The connection ended (the reason is the message)."""


@dataclass
class _Pending:
    mid: int
    qos: int
    settled: bool = False


class _Session:
    """One connection to the broker: paho-mqtt's network thread hands messages to the event
    loop, which stores them and acknowledges each in arrival order once it is settled."""

    def __init__(
        self, client_id: str, store: Store, stats: IngestStats, failures: Counter[int]
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.loop = asyncio.get_running_loop()
        self.client_id, self.store, self.stats, self.failures = client_id, store, stats, failures
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
            manual_ack=True, reconnect_on_failure=False,
        )  # fmt: skip
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_unsubscribe = self._on_unsubscribe
        self.ended, self.unsubscribed, self.gone = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.reason = ""
        self.subscribed = False
        self.order: deque[_Pending] = deque()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, host: str, port: int, stop: asyncio.Event) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_SECONDS
        props.ReceiveMaximum = IN_FLIGHT
        await asyncio.to_thread(
            self.client.connect, host, port, 30, clean_start=False, properties=props
        )
        self.client.loop_start()
        stopped, ended = (
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self.ended.wait()),
        )
        try:
            await asyncio.wait([stopped, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            ended.cancel()
        if self.ended.is_set() and not stop.is_set():
            raise _Lost(self.reason)

    async def close(self, stopping: bool) -> None:
        """Let the messages being stored finish (and be acknowledged), then disconnect.

        When the service stops, the subscription is dropped first and the session ended with
        the connection: the broker hands a shared subscription's messages to an offline
        member's session too (mosquitto does), and they would wait there for this process.
        After a crash or a lost connection the session stays, with what it holds.

        The subscription is dropped even when its SUBACK has not come yet (a session that
        resumes gets its redelivered messages before it), since the broker takes packets in
        order; and the network thread is stopped only once paho-mqtt reports the connection
        closed, so that the DISCONNECT has been sent: ``loop_stop`` does not wait for what is
        queued, and a socket closed without it leaves the session (and its share of the
        messages) in the broker for :data:`SESSION_SECONDS`.
        """
        if stopping and self.client.is_connected():
            self.client.unsubscribe(SUBSCRIPTION)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.unsubscribed.wait(), timeout=5)
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=30)
        if self.client.is_connected():
            if stopping:
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0
                self.client.disconnect(properties=props)
            else:
                self.client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), timeout=5)
        await asyncio.to_thread(self.client.loop_stop)

    # paho-mqtt's thread
    def _on_connect(self, client: Any, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        if code.is_failure:
            self.loop.call_soon_threadsafe(self._end, f"connection refused: {code}")
        else:
            client.subscribe(SUBSCRIPTION, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, codes: Any, _p: Any) -> None:
        if any(c.is_failure for c in codes):
            self.loop.call_soon_threadsafe(self._end, f"subscription refused: {codes[0]}")
        else:
            self.loop.call_soon_threadsafe(self._subscribed)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.loop.call_soon_threadsafe(self._take, message)

    def _on_unsubscribe(self, *_args: Any) -> None:
        self.loop.call_soon_threadsafe(self.unsubscribed.set)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        self.loop.call_soon_threadsafe(self._end, f"disconnected: {code}")
        self.loop.call_soon_threadsafe(self.gone.set)

    # the event loop
    def _subscribed(self) -> None:
        self.subscribed = self.stats.connected = True
        log.info("subscribed to %s as %s", SUBSCRIPTION, self.client_id)

    def _end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    def _take(self, message: Any) -> None:
        if self.ended.is_set():
            return  # not acknowledged: the broker delivers it again
        self.stats.received += 1
        pending = _Pending(message.mid, message.qos)
        self.order.append(pending)
        task = self.loop.create_task(self._one(message, pending))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _one(self, message: Any, pending: _Pending) -> None:
        topic, payload = str(message.topic), bytes(message.payload or b"")
        stats = self.stats
        try:
            stream, items = decode(topic, payload)
            stored = await self.store(stream, items, bool(message.dup))
            stats.stored += stored  # (not `+= await`: other messages are stored meanwhile)
            stats.stored_messages += 1
            if message.dup and self.failures:
                self.failures.pop(zlib.crc32(payload, zlib.crc32(topic.encode())), None)
        except CityosError as exc:
            reason = str(exc)
            stats.dropped[reason.split(":")[0][:80]] += 1
            log.warning("dropped a message on %s: %s", topic, reason)
        except Exception as exc:  # never let one message stop the subscriber
            stats.last_error = f"{type(exc).__name__}: {exc}"
            key = zlib.crc32(payload, zlib.crc32(topic.encode()))
            self.failures[key] += 1
            if self.failures[key] < STORE_ATTEMPTS:
                log.exception("could not store a message on %s; it comes again", topic)
                self._end("a message could not be stored")  # reconnect: it is delivered again
                return
            del self.failures[key]
            stats.dropped["store failed"] += 1
            log.exception("could not store a message on %s (%d tries); dropped", topic,
                          STORE_ATTEMPTS)  # fmt: skip
        pending.settled = True
        self._acknowledge()

    def _acknowledge(self) -> None:
        """PUBACK the settled messages at the head of the queue, in arrival order; none after
        the connection ended (the broker delivers those again, marked DUP)."""
        while self.order and self.order[0].settled and not self.ended.is_set():
            done = self.order.popleft()
            if done.qos:
                self.client.ack(done.mid, done.qos)


async def run_subscriber(
    url: str, store: Store, stats: IngestStats, stop: asyncio.Event, client_id: str
) -> None:
    """Subscribe and store until ``stop`` is set; reconnect after a lost broker (1 s, doubling
    to 30 s).

    Each message is acknowledged only once it is committed, or dropped for good, in the order
    the messages came (MQTT 5.0 §4.6). The session (``client_id``, clean start off, kept
    :data:`SESSION_SECONDS`) is persistent, so what the broker delivered and this process did
    not store — a crash, a lost connection, a store that failed — comes again. At most
    :data:`IN_FLIGHT` messages are unacknowledged at once (the Receive Maximum asked of the
    broker).
    """
    host, port = parse_mqtt_url(url)
    backoff = 1.0
    failures: Counter[int] = Counter()
    while not stop.is_set():
        session = _Session(client_id, store, stats, failures)
        try:
            await session.run(host, port, stop)
        except (OSError, _Lost) as exc:
            stats.last_error = str(exc) or type(exc).__name__
        finally:
            stats.connected = False
            await session.close(stopping=stop.is_set())
        if stop.is_set():
            return
        backoff = 1.0 if session.subscribed else backoff
        log.warning("MQTT broker %s:%s: %s; reconnecting in %.0f s", host, port,
                    stats.last_error, backoff)  # fmt: skip
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        backoff = min(30.0, backoff * 2)
