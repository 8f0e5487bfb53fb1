"""Prometheus metrics, in a registry per app (tests build many apps in one process)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.canary import Track

STAGES = ("download", "decode", "model")
# Why a model call failed (gateway.errors), the only values of the per-track `reason` label.
MODEL_ERRORS = ("timeout", "model_unavailable", "model_error")
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

    def watch_keys(self, keys: _Keys) -> None:
        self.registry.register(_KeyCounters(keys))

    def tracks(self, tracks: Iterable[Track]) -> dict[str, TrackMetrics]:
        """Metrics of the model calls per canary track, by name (only the configured ones, so
        the label values stay bounded)."""
        names = ["track", "version_label"]
        calls = Counter(
            "gateway_model_requests",
            "Predict calls by canary track and the TF Serving version label asked for "
            "(empty: no label)",
            names,
            registry=self.registry,
        )
        errors = Counter(
            "gateway_model_errors",
            "Predict calls that failed, by track, version label and reason",
            [*names, "reason"],
            registry=self.registry,
        )
        latency = Histogram(
            "gateway_model_duration_seconds",
            "Predict call latency (retries included) by track and version label",
            names,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        version = Gauge(
            "gateway_model_served_version",
            "The model version TF Serving last reported for the track's calls",
            names,
            registry=self.registry,
        )
        result = {}
        for track in tracks:
            values = (track.name, track.label or "")
            result[track.name] = TrackMetrics(
                calls.labels(*values),
                latency.labels(*values),
                {reason: errors.labels(*values, reason) for reason in MODEL_ERRORS},
                version.labels(*values),
            )
        return result

    def render(self) -> bytes:
        return generate_latest(self.registry)


class TrackMetrics:
    """Count, latency, errors and last served version of one track's model calls."""

    def __init__(self, calls: Counter, latency: Histogram, errors: dict[str, Counter],
                 version: Gauge) -> None:  # fmt: skip
        self._calls, self._latency, self._errors, self._version = calls, latency, errors, version

    @contextlib.contextmanager
    def observe(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except Exception as error:
            reason = getattr(error, "reason", "")
            self._errors[reason if reason in self._errors else "model_error"].inc()
            raise
        finally:  # a cancelled call (the client left) counts, as no error
            self._calls.inc()
            self._latency.observe(time.perf_counter() - start)

    def served(self, version: int | None) -> None:
        if version is not None:
            self._version.set(version)


class _Keys(Protocol):
    reloads: int
    failures: int

    @property
    def count(self) -> int: ...


class _KeyCounters(Collector):
    """The API key store's state (gateway/auth.py), read at scrape time."""

    def __init__(self, keys: _Keys) -> None:
        self._keys = keys

    def collect(self) -> Iterator[Metric]:
        keys = self._keys
        yield GaugeMetricFamily("gateway_api_keys", "API keys accepted now", value=keys.count)
        yield CounterMetricFamily(
            "gateway_api_key_reloads", "Key file changes loaded", value=keys.reloads
        )
        yield CounterMetricFamily(
            "gateway_api_key_reload_failures",
            "Key file checks that found it unreadable or invalid (the last keys stay)",
            value=keys.failures,
        )


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
