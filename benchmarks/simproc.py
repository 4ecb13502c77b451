"""The GoGetSSL simulator in a process of its own, steered through a pipe.

A simulator in the poller's process shares its GIL: its replies wait on the poller's Python and
the poller's threads wait on the simulator's, so concurrency looks worse (or better) than across
a network. In its own process it answers like a provider far away: after ``latency`` seconds,
whatever the poller does meanwhile.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from tests.providers.gogetssl_sim import GoGetSSLSim


def _serve(conn, latency: float) -> None:
    sim = GoGetSSLSim(latency=latency)
    sim.start()
    conn.send(sim.url)
    while True:
        name, args = conn.recv()
        if name == "stop":
            break
        conn.send(getattr(_Control(sim), name)(*args))
    sim.stop()
    conn.send(None)


class _Control:
    """What the bench asks of the simulator, run in its process."""

    def __init__(self, sim: GoGetSSLSim):
        self.sim = sim

    def clone(self, order_id: str, count: int) -> list[str]:
        return self.sim.clone(order_id, count)

    def approve(self, order_ids: list[str]) -> None:
        for order_id in order_ids:
            self.sim.approve(order_id)

    def set_status(self, order_ids: list[str], status: str) -> None:
        for order_id in order_ids:
            self.sim.set_status(order_id, status, "changed by the bench")

    def order_calls(self) -> dict[str, int]:
        return dict(self.sim.order_calls)

    def path_calls(self) -> dict[str, int]:
        return dict(self.sim.path_calls)


class SimProcess:
    """Start with ``with SimProcess(latency) as sim:``; ``sim.url`` for the adapter."""

    def __init__(self, latency: float = 0.05):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency), daemon=True)
        self.latency = latency
        self.url = ""

    def __enter__(self) -> SimProcess:
        self._process.start()
        self.url = self._conn.recv()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._conn.send(("stop", ()))
        self._conn.recv()
        self._process.join(timeout=10)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any) -> Any:
            self._conn.send((name, args))
            return self._conn.recv()

        return call
