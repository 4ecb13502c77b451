"""Profile one poll round of 1,000 due orders on PostgreSQL: python -m benchmarks.profile_poll

The simulator answers in its own process after 50 ms; the profile (pyinstrument) shows where the
poller's own time goes, which is what the round's length is made of besides the waiting.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from pyinstrument import Profiler

from benchmarks.setup import fresh_database, gogetssl_account, host
from benchmarks.simproc import SimProcess
from panel_ssl_plugin import polling
from panel_ssl_plugin.polling import poll_due
from tests.seeding import seed_pending


class InThisThread:
    """An executor that runs everything in the calling thread, where the profiler looks."""

    def __init__(self, max_workers: int = 1):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, work, items):
        return map(work, items)

    def submit(self, work, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(work(*args))
        return future


def main(count: int = 1000) -> None:
    now = datetime.now(UTC)
    with SimProcess(latency=0.05) as sim, fresh_database() as url:
        runtime = host(url)
        account = gogetssl_account(runtime, sim.url)
        seed_pending(runtime, sim.clone, account, count, due=now)
        profiler = Profiler(interval=0.001)
        polling.ThreadPoolExecutor = InThisThread
        with profiler:
            # one chunk after the other in this thread: pyinstrument sees only its own thread
            report = poll_due(runtime.orders, now + timedelta(seconds=1), limit=count, workers=0)
        print(report.summary())
        profiler.print(file=sys.stdout, show_all=False)
        runtime.engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
