"""SDK publish rate next to a bare kafka-python send loop of pre-encoded bytes, same run.

Both use the producer configuration the SDK uses (acks=all, idempotence, linger, batch
size, compression), so the ratio is the cost of the SDK itself: encoding the Envelope,
stamping received_at, keying, delivery tracking and backpressure. Also compares codecs.

    RAPPORT_KAFKA_BOOTSTRAP=127.0.0.1:19092 .venv/bin/python -m bench.bench_publish --events 200000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time

from kafka import KafkaProducer

from bench.common import bench_settings
from producers import EncodedEvent, Publisher, PublisherConfig
from producers.simulator import simulate
from schemas import Envelope, encode_event


def bare(config: PublisherConfig, pairs: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(**config.kafka_config())
    producer.send(config.topic, b"warm-up", key=b"warm-up").get(30)
    began = time.perf_counter()
    for key, value in pairs:
        producer.send(config.topic, value=value, key=key)
    producer.flush()
    seconds = time.perf_counter() - began
    producer.close()
    return len(pairs) / seconds


def sdk(config: PublisherConfig, events: list[Envelope]) -> float:
    publisher = Publisher.from_config(config)
    publisher.publish_and_wait(events[0], timeout=30)
    began = time.perf_counter()
    for event in events:
        publisher.publish(event)
    publisher.flush()
    seconds = time.perf_counter() - began
    publisher.close()
    return len(events) / seconds


def sdk_pre_encoded(config: PublisherConfig, encoded: list[EncodedEvent]) -> float:
    """The SDK's own share: `send` of events it already encoded (no Envelope encoding)."""
    publisher = Publisher.from_config(config)
    publisher.send(encoded[0]).result(timeout=30)
    began = time.perf_counter()
    for item in encoded:
        publisher.send(item)
    publisher.flush()
    seconds = time.perf_counter() - began
    publisher.close()
    return len(encoded) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--codec-events", type=int, default=40_000)
    args = parser.parse_args()

    began = time.perf_counter()
    events = list(itertools.islice(simulate(5000, seed=1), args.events))
    pairs = [(e.customer.partition_key.encode(), encode_event(e)) for e in events]
    stamper = Publisher.from_config(PublisherConfig("127.0.0.1:1", "x", connect_eagerly=False))
    encoded = [stamper.encode(e) for e in events]
    size = sum(len(v) for _, v in pairs) / len(pairs)
    # The prepared events are the benchmark's, not the code under test's: keep the garbage
    # collector from rescanning them in whichever loop happens to trigger a full pass.
    gc.collect()
    gc.freeze()
    print(
        f"{len(events):,} simulated events, {size:.0f} bytes each on average, "
        f"prepared in {time.perf_counter() - began:.1f}s"
    )

    with bench_settings("publish") as settings:
        print(f"codecs (bare loop, {args.codec_events:,} events):")
        for codec in (None, "gzip", "snappy", "lz4", "zstd"):
            config = PublisherConfig(settings.bootstrap, settings.topic, compression=codec)
            rate = bare(config, pairs[: args.codec_events])
            print(f"  {codec or 'none':<7} {rate:>10,.0f} events/s")

        config = PublisherConfig(settings.bootstrap, settings.topic)
        bare_rates, sdk_rates, send_rates = [], [], []
        for _ in range(args.rounds):  # interleaved: all see the same machine load
            bare_rates.append(bare(config, pairs))
            sdk_rates.append(sdk(config, events))
            send_rates.append(sdk_pre_encoded(config, encoded))
        best_bare, best_sdk = max(bare_rates), max(sdk_rates)
        print(f"bare kafka-python: {', '.join(f'{r:,.0f}' for r in bare_rates)} events/s")
        print(f"Rapport SDK:       {', '.join(f'{r:,.0f}' for r in sdk_rates)} events/s")
        print(f"SDK send, encoded: {', '.join(f'{r:,.0f}' for r in send_rates)} events/s")
        print(f"best SDK send of encoded events / best bare = {max(send_rates) / best_bare:.2f}")
        print(
            f"best SDK / best bare = {best_sdk / best_bare:.2f} "
            f"(compression {config.compression}, linger {config.linger_ms} ms)"
        )


if __name__ == "__main__":
    main()
