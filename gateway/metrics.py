"""Prometheus metrics of one app (its own registry: no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
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

    def observe_signature(self, level: str, seconds: float) -> None:
        self.signatures.labels(level).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
