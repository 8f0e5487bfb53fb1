"""Prometheus metrics, in a registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

STAGES = ("download", "decode", "model")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # *_created series only add scrape weight here
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "gateway_errors",
            "Requests that failed, by route and reason",
            ["route", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Whole request latency by route",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        stage = Histogram(
            "gateway_stage_duration_seconds",
            "Latency of one predict stage: download, decode (decode+resize+scale), model",
            ["stage"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # CPU (not wall) time of the worker-thread step, so the CPU per request can be split
        # into preprocessing and everything else while under load (bench/gateway.py reads it).
        self.decode_cpu = Counter(
            "gateway_decode_cpu_seconds",
            "Worker-thread CPU time of decode+resize+scale+request encoding (answered or not)",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight",
            "POST /predict requests being handled (at most GATEWAY_MAX_IN_FLIGHT)",
            registry=self.registry,
        )
        # Resolve label children once: .labels() per request costs a lock and a dict lookup.
        self.stage = {name: stage.labels(stage=name) for name in STAGES}

    def render(self) -> bytes:
        return generate_latest(self.registry)
