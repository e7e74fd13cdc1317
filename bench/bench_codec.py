"""Codec throughput: decode + validate + encode, per event type, in events/s on one core.

Not a test: run it (`make bench`, or `.venv/bin/python bench/bench_codec.py`) before and
after changing the codec, the envelope or a payload, and compare. Each type gets a few
thousand distinct events built from its catalogue example (fresh ids, customers and times),
encoded once; every repeat then decodes each record, as the worker does, and re-encodes it.
Old versions are measured too, through their upcasters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from schemas import REGISTRY, decode_event, encode_event
from schemas.catalogue import example_event


def records(event_type: str, version: int, count: int) -> list[bytes]:
    """`count` distinct wire records of one type and version."""
    base = example_event(event_type, version)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for n in range(count):
        occurred = start + timedelta(seconds=17 * n)
        event = {
            **base,
            "event_id": str(uuid.uuid4()),
            "occurred_at": occurred.isoformat(),
            "received_at": (occurred + timedelta(seconds=2)).isoformat(),
            "customer": {"customer_id": f"cust-{n % 997:04d}"},
        }
        made.append(orjson.dumps(event))
    return made


def throughput(work: Callable[[bytes], object], batch: list[bytes], repeats: int) -> list[float]:
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        for record in batch:
            work(record)
        rates.append(len(batch) / (time.perf_counter() - began))
    return rates


def round_trip(record: bytes) -> object:
    return encode_event(decode_event(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=3000, help="events per type")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="the core to run on")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    cases = [
        (entry.name, version)
        for entry in REGISTRY.types()
        for version in sorted(entry.models, reverse=True)
    ]
    width = max(len(f"{name} v{version}") for name, version in cases) + 2
    print(
        f"decode + validate + encode, {args.events} events x {args.repeats} repeats, "
        f"events/s on CPU {args.cpu}"
    )
    print(f"{'type':<{width}}{'min':>10}{'median':>10}{'max':>10}  note")
    medians = []
    for name, version in cases:
        batch = records(name, version, args.events)
        round_trip(batch[0])  # warm up caches of the models involved
        rates = throughput(round_trip, batch, args.repeats)
        current = version == REGISTRY.current_version(name)
        if current:
            medians.append(statistics.median(rates))
        print(
            f"{f'{name} v{version}':<{width}}{min(rates):>10,.0f}"
            f"{statistics.median(rates):>10,.0f}{max(rates):>10,.0f}"
            f"  {'' if current else 'upcast to v' + str(REGISTRY.current_version(name))}"
        )
    print(f"{'median over current types':<{width}}{'':>10}{statistics.median(medians):>10,.0f}")


if __name__ == "__main__":
    main()
