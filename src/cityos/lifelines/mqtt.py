"""Observations over MQTT (``cityos serve … --mqtt mqtt://HOST:PORT``): a subscriber in the
service's event loop takes ``v1.1/Datastreams(ID)/Observations`` messages (one Observation, or a
list of them, as SensorThings JSON) at QoS 1 and stores them through the same writer and rules
as HTTP. A message that cannot be stored — not JSON, an unknown datastream, a result of the
wrong type — is counted by reason and logged, and the subscriber goes on; a lost broker is
reconnected with back-off. The subscription is shared (``$share/cityos/…``), so several worker
processes take turns rather than store each message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cityos.errors import CityosError, InputError

__all__ = ["IN_FLIGHT", "SUBSCRIPTION", "IngestStats", "parse_mqtt_url", "run_subscriber"]

log = logging.getLogger("cityos.mqtt")
SUBSCRIPTION = "$share/cityos/v1.1/#"
#: messages being stored at once (in arrival order through the one writer)
IN_FLIGHT = 256
_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d{1,10})\)/Observations$")
#: what stores a message's observations: (datastream id, observations) → stored count
Store = Callable[[int, list[dict[str, Any]]], Awaitable[int]]


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


async def run_subscriber(url: str, store: Store, stats: IngestStats, stop: asyncio.Event) -> None:
    """Subscribe and store until ``stop`` is set; reconnect after a lost broker (1 s, doubling
    to 30 s)."""
    import aiomqtt

    host, port = parse_mqtt_url(url)
    backoff = 1.0
    slots = asyncio.Semaphore(IN_FLIGHT)
    pending: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        try:
            async with aiomqtt.Client(host, port, keepalive=30) as client:
                await client.subscribe(SUBSCRIPTION, qos=1)
                stats.connected, backoff = True, 1.0
                log.info("subscribed to %s on %s:%s", SUBSCRIPTION, host, port)
                async for message in client.messages:
                    # up to IN_FLIGHT messages stored at once: the writer commits them together
                    await slots.acquire()
                    task = asyncio.create_task(
                        _one(str(message.topic), bytes(message.payload or b""), store, stats)
                    )
                    pending.add(task)
                    task.add_done_callback(functools.partial(_done, pending, slots))
        except aiomqtt.MqttError as exc:
            stats.connected, stats.last_error = False, str(exc)
            log.warning("MQTT broker %s:%s: %s; reconnecting in %.0f s", host, port, exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(30.0, backoff * 2)


def _done(
    pending: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]
) -> None:
    pending.discard(task)
    slots.release()


async def _one(topic: str, payload: bytes, store: Store, stats: IngestStats) -> None:
    stats.received += 1
    try:
        stream, items = decode(topic, payload)
        stored = await store(stream, items)  # (not `+= await`: other messages are stored meanwhile)
        stats.stored += stored
        stats.stored_messages += 1
    except CityosError as exc:
        reason = str(exc)
        stats.dropped[reason.split(":")[0][:80]] += 1
        log.warning("dropped a message on %s: %s", topic, reason)
    except Exception as exc:  # never let one message stop the subscriber
        stats.dropped["store failed"] += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"
        log.exception("could not store a message on %s", topic)
