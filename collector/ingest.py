"""Accept a request's events: encode, check sizes, publish, and wait for every ack.

A request succeeds only once Kafka has acknowledged each of its events. If Kafka cannot be
reached or does not answer in time, the request fails as a whole with Unavailable; the
client sends it again and, the event_ids being the same, nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.errors import InvalidEvents, RequestTooLarge, Unavailable
from producers.errors import EventTooLarge, PublishError
from producers.publisher import Delivery, EncodedEvent, Publisher
from schemas import Envelope
from schemas.errors import Problem, SubjectErased


@dataclass(frozen=True)
class IngestLimits:
    max_event_bytes: int
    ack_timeout_s: float


class Ingestor:
    def __init__(
        self,
        publisher: Publisher,
        limits: IngestLimits,
        on_acknowledged: Callable[[int, float], None] = lambda events, seconds: None,
    ) -> None:
        self.publisher = publisher
        self.limits = limits
        # Told (events, seconds from send to the last acknowledgement) per request.
        self.on_acknowledged = on_acknowledged

    async def ingest(self, events: Sequence[Envelope]) -> int:
        """Publish `events`; return when all are acknowledged (raise if any is not)."""
        # Sealing may ask the key store for new customers' keys: off the event loop.
        encoded = await asyncio.to_thread(self._encode_all, events)
        for i, item in enumerate(encoded):
            if len(item.value) > self.limits.max_event_bytes:
                raise RequestTooLarge(
                    f"event {i} ({item.event_id}) is {len(item.value)} bytes encoded; "
                    f"the limit is {self.limits.max_event_bytes}"
                )
        if not encoded:
            return 0
        # send() blocks while Kafka has given no metadata yet; keep that off the event loop.
        began = time.perf_counter()
        deliveries = await asyncio.to_thread(self._send_all, encoded)
        await self._acknowledged(deliveries)
        self.on_acknowledged(len(deliveries), time.perf_counter() - began)
        return len(deliveries)

    def _encode_all(self, events: Sequence[Envelope]) -> list[EncodedEvent]:
        self.publisher.prepare(list(events))  # their customers' new data keys, at once
        encoded, problems = [], []
        for i, event in enumerate(events):
            try:
                encoded.append(self.publisher.encode(event))
            except SubjectErased as exc:
                problems.append(Problem(f"[{i}].customer", None, str(exc)))
        if problems:
            raise InvalidEvents(problems)
        return encoded

    def _send_all(self, encoded: Sequence[EncodedEvent]) -> list[Delivery]:
        try:
            return [self.publisher.send(item) for item in encoded]
        except EventTooLarge as exc:
            raise RequestTooLarge(str(exc)) from None
        except PublishError as exc:
            raise Unavailable(f"Kafka is unavailable: {exc}") from None

    async def _acknowledged(self, deliveries: list[Delivery]) -> None:
        loop = asyncio.get_running_loop()
        all_done: asyncio.Future[None] = loop.create_future()
        remaining = len(deliveries)
        lock = threading.Lock()

        def resolve() -> None:
            if not all_done.done():
                all_done.set_result(None)

        def one_done(_: Delivery) -> None:  # on Kafka's I/O thread
            nonlocal remaining
            with lock:
                remaining -= 1
                last = remaining == 0
            if last:
                loop.call_soon_threadsafe(resolve)

        for delivery in deliveries:
            delivery.add_done_callback(one_done)
        try:
            await asyncio.wait_for(all_done, self.limits.ack_timeout_s)
        except TimeoutError:
            raise Unavailable(
                f"Kafka did not acknowledge {remaining} of {len(deliveries)} events "
                f"within {self.limits.ack_timeout_s:g}s"
            ) from None
        failures = [exc for d in deliveries if (exc := d.exception()) is not None]
        if failures:
            if isinstance(failures[0], EventTooLarge):
                raise RequestTooLarge(str(failures[0]))
            raise Unavailable(f"{len(failures)} events not stored by Kafka: {failures[0]}")
