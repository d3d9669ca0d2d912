"""Prometheus metrics of one app (its own registry: no global state)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "docgate_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "docgate_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.signatures = Histogram(
            "docgate_signing_seconds",
            "Time to sign one document in a worker, by PAdES level reached",
            ["level"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

        self.verifications = Counter(
            "docgate_verifications",
            "Documents verified, by verdict",
            ["verdict"],
            registry=self.registry,
        )

        self.e_rate = Gauge(
            "docgate_e_rate",
            "Electronic-exchange rate per agency, from the latest report revision run",
            ["agency"],
            registry=self.registry,
        )

        self.loop_lag = Histogram(
            "docgate_event_loop_lag_seconds",
            "How late a timer of the gateway's event loop fires (sampled every 50 ms): "
            "time the loop could not answer anything",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    async def watch_event_loop(self, interval: float = 0.05) -> None:
        """Sample the event loop's lag until cancelled (runs for the app's lifetime)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            self.loop_lag.observe(max(0.0, loop.time() - started - interval))

    def set_e_rates(self, report: dict) -> None:
        """Show the agencies' ``e_rate`` of a report just run (none where it is null)."""
        self.e_rate.clear()
        for row in report["agencies"]:
            if row["e_rate"] is not None:
                self.e_rate.labels(row["agency"]).set(row["e_rate"])

    def observe_signature(self, level: str, seconds: float) -> None:
        self.signatures.labels(level).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
