"""Collector throughput with batches of 100 Segment messages, then p99 latency at half rate.

Runs the real `rapport collector` in a child process against a dedicated topic and
database; the load comes from this process over HTTP (httpx, asyncio), both on this machine.

    RAPPORT_KAFKA_BOOTSTRAP=… RAPPORT_DATABASE_URL=… .venv/bin/python -m bench.bench_collector
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx
import orjson

from bench.common import bench_settings
from tests.support import rapport, running_collector


def batch_body(n: int, batch: int) -> bytes:
    messages = [
        {
            "type": "track",
            "userId": f"user-{(n * batch + i) % 5000}",
            "event": "Order Completed" if i % 10 == 0 else "Product Viewed",
            "messageId": str(uuid.uuid4()),
            "timestamp": "2026-05-01T10:00:00.000Z",
            "properties": {"order_id": f"o-{n}-{i}", "total": 19.9, "currency": "EUR", "sku": "A1"},
            "context": {"library": {"name": "bench"}, "ip": "127.0.0.1"},
        }
        for i in range(batch)
    ]
    return orjson.dumps({"batch": messages, "sentAt": "2026-05-01T10:00:00.100Z"})


async def saturate(base: str, key: str, bodies: list[bytes], concurrency: int) -> float:
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=base, auth=(key, ""), timeout=60) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post("/v1/batch", content=body)
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began


async def paced(base: str, key: str, bodies: list[bytes], per_second: float) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, auth=(key, ""), timeout=60) as client:

        async def one(body: bytes) -> None:
            began = time.perf_counter()
            response = await client.post("/v1/batch", content=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - began)

        tasks = []
        start = time.perf_counter()
        for n, body in enumerate(bodies):  # open loop: send on schedule, whatever the replies
            delay = start + n / per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--paced-seconds", type=float, default=20)
    args = parser.parse_args()

    with bench_settings("collector", database=True) as settings:
        key = rapport(settings, "sources", "add", "bench", "--rate-limit", "1000000").stdout.strip()
        with running_collector(settings) as base:
            requests = args.events // args.batch
            bodies = [batch_body(n, args.batch) for n in range(requests)]
            asyncio.run(saturate(base, key, bodies[:20], 4))  # warm-up
            seconds = asyncio.run(saturate(base, key, bodies, args.concurrency))
            rate = requests * args.batch / seconds
            print(
                f"throughput: {requests * args.batch:,} events in {requests:,} requests of "
                f"{args.batch} in {seconds:.1f}s = {rate:,.0f} events/s "
                f"({requests / seconds:,.0f} requests/s, concurrency {args.concurrency})"
            )
            half = rate / 2 / args.batch
            count = max(50, int(half * args.paced_seconds))
            paced_bodies = [batch_body(requests + n, args.batch) for n in range(count)]
            latencies = sorted(asyncio.run(paced(base, key, paced_bodies, half)))
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            print(
                f"at half that rate ({half * args.batch:,.0f} events/s, {half:.1f} requests/s, "
                f"{count} requests): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"max {latencies[-1] * 1000:.1f} ms"
            )


if __name__ == "__main__":
    main()
