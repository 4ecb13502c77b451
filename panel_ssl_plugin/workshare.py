"""Work shared among the actors of one process, so that one of them cannot take it all.

The pre-flight checks run on threads every popup of the process shares. A plain thread pool
serves its queue in order: one reseller posting thousands of names filled it, and for as long
as it took every other reseller's checks said "could not check in time". Here each actor has a
queue of its own, the threads take the queues in turn (round robin), and no actor holds more
than ``per_key`` threads at once: whatever one actor queues, the others' work starts at the
next free thread. A job whose caller stopped waiting is cancelled before it starts.

``Throttle`` bounds how much work an actor may ask for in a minute (a token bucket per actor),
so that queueing without end is refused up front, in words.

Small enough to write rather than import: the standard library's executors have one queue, and
rate-limit libraries bring storage backends this in-process count does not need.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

Job = tuple[Future, Callable[[], Any]]


class FairPool:
    """``workers`` threads serving one queue per key in turn, at most ``per_key`` at once each."""

    def __init__(self, workers: int, per_key: int, name: str):
        self.workers, self.per_key, self.name = workers, per_key, name
        self._queues: OrderedDict[Hashable, list[Job]] = OrderedDict()  # in turn order
        self._running: Counter[Hashable] = Counter()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, key: Hashable, job: Callable[[], Any]) -> Future:
        """Queue ``job`` as ``key``'s; cancel the future and it never starts."""
        future: Future = Future()
        with self._ready:
            self._queues.setdefault(key, []).append((future, job))
            if len(self._threads) < self.workers:
                self._start_thread()
            self._ready.notify()
        return future

    def queued(self, key: Hashable) -> int:
        """How many of ``key``'s jobs wait for a thread."""
        with self._ready:
            return len(self._queues.get(key, ()))

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _take(self) -> tuple[Hashable, Job] | None:
        """The next job in turn: the first key with work waiting and a thread to spare, which
        then goes to the back of the line. Cancelled jobs are dropped on the way."""
        for key in list(self._queues):
            queue = self._queues[key]
            while queue and queue[0][0].cancelled():
                queue.pop(0)
            if not queue:
                del self._queues[key]
                continue
            if self._running[key] >= self.per_key:
                continue
            self._running[key] += 1
            job = queue.pop(0)
            if queue:
                self._queues.move_to_end(key)
            else:
                del self._queues[key]
            return key, job
        return None

    def _serve(self) -> None:
        while True:
            with self._ready:
                while (taken := self._take()) is None:
                    self._ready.wait()
            key, (future, job) = taken
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job())
                    except BaseException as error:  # the caller reads it from the future
                        future.set_exception(error)
            finally:
                with self._ready:
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]
                    self._ready.notify()


class Throttle:
    """At most ``per_minute`` units of work per key and minute (a bucket per key that refills
    steadily), for at most ``keys`` keys at once (the least recently seen are forgotten)."""

    def __init__(
        self, per_minute: int, keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.per_minute, self.keys, self.clock = per_minute, keys, clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: Hashable, units: int) -> bool:
        """Take ``units`` from ``key``'s bucket: False (and nothing taken) when it has fewer."""
        now = self.clock()
        with self._lock:
            level, then = self._buckets.pop(key, (float(self.per_minute), now))
            level = min(self.per_minute, level + (now - then) * self.per_minute / 60)
            allowed = units <= level
            self._buckets[key] = (level - units if allowed else level, now)
            while len(self._buckets) > self.keys:
                self._buckets.popitem(last=False)
        return allowed
