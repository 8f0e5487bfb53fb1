"""Prometheus metrics, in a registry per app (tests build many apps in one process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

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

    def watch_budget(self, budget: _Budget) -> None:
        total = Gauge(
            "gateway_memory_budget_bytes",
            "Memory that requests may hold at once (a share of the container's limit)",
            registry=self.registry,
        )
        total.set_function(lambda: budget.total)
        held = Gauge(
            "gateway_memory_reserved_bytes",
            "Memory held by requests now: bodies, downloads, decodes, model requests",
            registry=self.registry,
        )
        held.set_function(lambda: budget.reserved)

    def watch_connections(self, guard: _Guard) -> None:
        open_now = Gauge(
            "gateway_connections_open",
            "HTTP connections open (at most GATEWAY_MAX_CONNECTIONS)",
            registry=self.registry,
        )
        open_now.set_function(lambda: guard.open_connections)
        self.registry.register(_GuardCounters(guard))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Budget(Protocol):
    total: int
    reserved: int


class _Guard(Protocol):
    open_connections: int
    refused_connections: int
    header_timeouts: int

    @property
    def malformed_requests(self) -> int: ...


class _GuardCounters(Collector):
    """Counters kept by the connection guards (gateway/protocol.py), read at scrape time."""

    def __init__(self, guard: _Guard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[Metric]:
        guard = self._guard
        for name, text, value in (
            ("gateway_connections_refused", "Connections closed at once: too many open",
             guard.refused_connections),
            ("gateway_header_timeouts", "Connections closed: request head not complete in time",
             guard.header_timeouts),
            ("gateway_malformed_requests", "Requests refused by the HTTP parser (400)",
             guard.malformed_requests),
        ):  # fmt: skip
            yield CounterMetricFamily(name, text, value=value)
