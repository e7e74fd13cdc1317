"""`rapport worker` under pyinstrument, every thread of it, for `rapport bench`.

    python -m bench.profiled_worker OUT_PREFIX [worker options…]

pyinstrument samples only the thread that starts it, and the worker's time is spread over
three kinds of thread: faust's event loop (decoding), aiokafka's consumer thread (fetching,
decompressing) and the `asyncio.to_thread` pool (the PostgreSQL batches). So a profiler is
started in every thread as it starts (`threading.setprofile`), and at exit all their
samples are combined into one session, one subtree per thread, written as
OUT_PREFIX.html and OUT_PREFIX.txt. Nothing in streams/ knows about it.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
from pyinstrument.session import Session

INTERVAL_S = 0.005
# Leaf frames where a thread waits for work (an event loop, a pool, a lock): left out of
# the "busy" view so it shows where the time goes while there is work. Waiting on
# PostgreSQL or Kafka inside a call stays in: that is part of the work.
IDLE_LEAVES = frozenset(
    {"epoll.poll", "select", "poll", "SimpleQueue.get", "lock.acquire", "sleep"}
)


class ThreadProfilers:
    """One pyinstrument profiler per thread, started as the thread starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[tuple[threading.Thread, Profiler]] = []

    def start_here(self) -> None:
        profiler = Profiler(interval=INTERVAL_S, async_mode="disabled", use_timing_thread=True)
        profiler.start()
        with self._lock:
            self._running.append((threading.current_thread(), profiler))

    def _on_thread_start(self, frame: FrameType, event: str, arg: Any) -> None:
        sys.setprofile(None)  # pyinstrument installs its own hook in this thread
        self.start_here()

    def install(self) -> None:
        threading.setprofile(self._on_thread_start)
        self.start_here()

    def session(self) -> Session | None:
        """All samples so far. A profiler can only be stopped from its own thread, so the
        other threads' samples are read as they stand (pyinstrument keeps them in a list)."""
        threading.setprofile(None)
        combined: Session | None = None
        with self._lock:
            running = list(self._running)
        for thread, profiler in running:
            session = (
                profiler.stop() if thread is threading.current_thread() else _snapshot(profiler)
            )
            if session is not None:
                combined = session if combined is None else Session.combine(combined, session)
        return combined


def _snapshot(profiler: Profiler) -> Session | None:
    active = profiler._active_session
    if active is None:
        return profiler.last_session
    records = list(active.frame_records)
    return Session(
        frame_records=records,
        start_time=active.start_time,
        duration=sum(seconds for _, seconds in records),
        min_interval=active.interval,
        max_interval=active.interval,
        sample_count=len(records),
        start_call_stack=active.start_call_stack,
        target_description=active.target_description,
        cpu_time=0.0,
        sys_path=sys.path,
        sys_prefixes=Session.current_sys_prefixes(),
    )


def busy(session: Session) -> Session:
    """The samples whose innermost frame is not an idle wait."""
    records = [
        (stack, seconds)
        for stack, seconds in session.frame_records
        if stack[-1].split("\x00", 1)[0] not in IDLE_LEAVES
    ]
    return Session(
        frame_records=records,
        start_time=session.start_time,
        duration=session.duration,
        min_interval=session.min_interval,
        max_interval=session.max_interval,
        sample_count=len(records),
        start_call_stack=session.start_call_stack,
        target_description=session.target_description + " (idle waits left out)",
        cpu_time=session.cpu_time,
        sys_path=session.sys_path,
        sys_prefixes=session.sys_prefixes,
    )


def write_profile(session: Session, prefix: Path) -> None:
    Path(f"{prefix}.html").write_text(HTMLRenderer().render(session))
    working = busy(session)
    flat = ConsoleRenderer(flat=True, time="percent_of_total").render(working)
    tree = ConsoleRenderer(unicode=True, time="percent_of_total").render(working)
    everything = ConsoleRenderer(unicode=True, time="percent_of_total").render(session)
    Path(f"{prefix}.txt").write_text(
        "Top frames by own time, all threads, idle waits left out:\n"
        + flat
        + "\n\nCall tree per thread, idle waits left out:\n"
        + tree
        + "\n\nCall tree per thread, everything (wall time of every thread):\n"
        + everything
    )


def main() -> None:
    prefix = Path(sys.argv[1])
    profilers = ThreadProfilers()
    profilers.install()
    from infra.cli import app

    try:
        app(["worker", "--processes", "1", *sys.argv[2:]], prog_name="rapport")
    finally:
        session = profilers.session()
        if session is not None:
            write_profile(session, prefix)


if __name__ == "__main__":
    main()
