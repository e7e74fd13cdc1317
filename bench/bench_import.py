"""`rapport import` runs in constant memory: peak RSS importing 100k rows vs 1M rows.

Writes JSON Lines files of simulated events (1,000 distinct events repeated, without
event_ids, so every row gets its own id derived from its line), then imports each in a
fresh child process through the real publisher into a dedicated topic, and reads the
child's peak RSS.

    RAPPORT_KAFKA_BOOTSTRAP=… .venv/bin/python -m bench.bench_import --small 100000 --large 1000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.common import bench_settings
from infra.worker_process import child_env
from producers.simulator import simulate
from schemas import encode_event


def write_rows(path: Path, rows: int) -> None:
    templates = []
    for event in itertools.islice(simulate(500, seed=2), 1000):
        raw = orjson.loads(encode_event(event))
        del raw["event_id"]
        templates.append(orjson.dumps(raw) + b"\n")
    with open(path, "wb") as file:
        for n in range(rows):
            file.write(templates[n % len(templates)])


def child(path: str) -> None:
    """Import `path` the way `rapport import` does, then report rows, time and peak RSS."""
    from infra import bootstrap
    from infra.settings import Settings
    from producers.importer import ImportOptions, run_import

    settings = Settings()
    with bootstrap.publisher(settings) as publisher:
        report = run_import(ImportOptions(Path(path)), publisher)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": report.published, "seconds": report.seconds, "peak_kib": peak_kib}))


def measure(settings: object, path: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_import", "--child", str(path)],
        env=child_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp, bench_settings("import") as settings:
        for rows in (args.small, args.large):
            path = Path(tmp) / f"rows-{rows}.jsonl"
            began = time.perf_counter()
            write_rows(path, rows)
            size_mb = path.stat().st_size / 1e6
            print(
                f"{rows:>9,} rows ({size_mb:,.0f} MB) written in {time.perf_counter() - began:.1f}s"
            )
            m = measure(settings, path)
            print(
                f"{int(m['rows']):>9,} rows imported in {m['seconds']:.1f}s "
                f"({m['rows'] / m['seconds']:,.0f} rows/s), "
                f"peak RSS {m['peak_kib'] / 1024:,.0f} MiB"
            )


if __name__ == "__main__":
    main()
