"""HTTP API (aiohttp): POST /predict, GET /healthz, /readyz; and GET /metrics, on its own port."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import auth, contract, imaging
from gateway.canary import Router
from gateway.download import Downloader
from gateway.drain import DRAIN, Drain, track_requests
from gateway.errors import GatewayError, OverloadedError
from gateway.memory import MemoryBudget, memory_limit
from gateway.metrics import Metrics
from gateway.netguard import Lookup, system_lookup
from gateway.predict import InFlightLimit, Services, json_response, predict
from gateway.protocol import ConnectionGuard, GatewayRunner
from gateway.settings import Settings
from gateway.tfserving import CachedReadiness, TFServingClient

log = logging.getLogger("gateway")

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
LIMIT = web.AppKey("in_flight_limit", InFlightLimit)
BUDGET = web.AppKey("memory_budget", MemoryBudget)
SERVICES = web.AppKey("services", Services)
READINESS = web.AppKey("readiness", CachedReadiness)
GUARD = web.AppKey("connection_guard", ConnectionGuard)
# Headers of aiohttp's own HTTP errors worth keeping on our JSON answer (405's Allow...).
_KEPT_HEADERS = (hdrs.ALLOW, hdrs.RETRY_AFTER, hdrs.WWW_AUTHENTICATE)
_REFUSALS = frozenset({OverloadedError.reason, "memory"})
METRICS_MAX_CONNECTIONS = 16  # scrapers (Prometheus, a kubectl port-forward) on the metrics port


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes a JSON {"error": ...}; every request is counted and timed."""
    metrics = request.app[METRICS]
    route = _route(request)
    start = time.perf_counter()
    reason = None
    try:
        response: web.StreamResponse = await handler(request)
    except GatewayError as exc:
        reason = exc.reason
        response = json_response(exc.status, {"error": exc.message})
        response.headers.update(exc.headers)
        if exc.close_connection:
            response.force_close()
    except web.HTTPException as exc:  # the router's 404/405 and aiohttp's own limits
        reason = "http_" + str(exc.status)
        response = json_response(exc.status, {"error": exc.reason})
        for name in _KEPT_HEADERS:
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    except Exception:  # a bug, not an input: say so in the log with its traceback
        log.exception("unexpected error on %s", route)
        reason = "internal"
        response = json_response(500, {"error": "internal error"})
    if reason is not None:
        metrics.errors.labels(route, reason).inc()
        # Refusals are counted, not logged: a line each would cost CPU when there is none.
        if response.status >= 500 and reason not in _REFUSALS:
            log.warning("%s %s -> %d: %s", request.method, route, response.status, reason)
    metrics.requests.labels(route, str(response.status)).inc()
    metrics.latency.labels(route).observe(time.perf_counter() - start)
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """The metrics port's 404/405 as JSON too (its requests are not counted)."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        response = json_response(exc.status, {"error": exc.reason})
        if hdrs.ALLOW in exc.headers:
            response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


async def predict_endpoint(request: web.Request) -> web.Response:
    return await predict(request, request.app[SERVICES])


async def healthz(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[DRAIN].draining:  # out of the Service's endpoints at the next probe
        return json_response(503, {"error": "draining: shutting down"})
    status = await request.app[READINESS].get()
    if status.ready:
        return json_response(200, {"status": "ready", "versions": list(status.versions)})
    return json_response(503, {"error": f"model not ready: {status.detail}"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    settings: Settings,
    *,
    lookup: Lookup = system_lookup,
    rng: random.Random | None = None,
    key_check_seconds: float = auth.CHECK_SECONDS,
    **downloader: Any,
) -> web.Application:
    """Build the app. Network clients are created at start-up, inside the event loop. Reads
    the API key file now: SettingsError (naming the variable) if it is bad.

    lookup replaces DNS for the image downloader (tests); rng draws the canary split; extra
    keyword arguments go to Downloader (e.g. ssl_context for a test CA).
    """
    keys = auth.KeyStore.open(settings.api_keys_file) if settings.api_keys_file else None
    middlewares = [track_requests, errors_and_metrics]
    if keys is not None:  # inside errors_and_metrics, which answers and counts the 401
        middlewares.append(auth.require_api_key)
    app = web.Application(middlewares=middlewares)
    app[DRAIN] = Drain()
    metrics = Metrics()
    router = Router(settings, rng)
    tracks = metrics.tracks(router.tracks)
    limit = memory_limit(settings.memory_limit_bytes)
    budget = MemoryBudget(limit.bytes * settings.memory_budget_percent // 100)
    metrics.watch_budget(budget)
    app[SETTINGS], app[METRICS], app[BUDGET] = settings, metrics, budget
    app[LIMIT] = InFlightLimit(settings.max_in_flight, metrics)
    app[GUARD] = connection_guard(settings)
    metrics.watch_connections(app[GUARD])
    if keys is not None:
        app[auth.KEYS] = keys
        metrics.watch_keys(keys)

    async def services(app: web.Application) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="decode")
        client = _tf_serving_client(settings, router.labels)
        fetcher = Downloader(
            settings.address_policy,
            max_bytes=settings.max_download_bytes,
            timeout=settings.download_timeout_seconds,
            max_redirects=settings.max_redirects,
            lookup=lookup,
            **downloader,
        )
        app[SERVICES] = Services(
            settings, metrics, app[LIMIT], budget, _image_spec(settings), executor, fetcher,
            client, router, tracks,
        )  # fmt: skip
        app[READINESS] = CachedReadiness(
            client, settings.ready_cache_seconds, settings.ready_timeout_seconds
        )
        log.info(
            "gateway ready: TF Serving %s model %s, %d decode threads, memory budget %d MiB "
            "(%d%% of %d MiB from %s)",
            settings.tf_serving_target,
            settings.model_name,
            settings.threads,
            budget.total >> 20,
            settings.memory_budget_percent,
            limit.bytes >> 20,
            limit.source,
        )
        watcher = asyncio.create_task(keys.watch(key_check_seconds)) if keys else None
        yield
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await fetcher.close()
        await client.close()
        executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(services)
    # No body is invited (100 Continue) from a request that will be refused at once.
    admitted = functools.partial(_has_slot, app)
    expect = functools.partial(auth.continue_if_admitted, admitted=admitted)
    app.router.add_post(contract.PREDICT_PATH, predict_endpoint, expect_handler=expect)
    app.router.add_get(contract.HEALTH_PATH, healthz)
    app.router.add_get(contract.READY_PATH, readyz)
    return app


def _has_slot(app: web.Application, request: web.Request) -> bool:
    limit = app[LIMIT]
    return limit.count < limit.limit


def create_metrics_app(app: web.Application) -> web.Application:
    """GET /metrics of `app`, served on GATEWAY_METRICS_PORT only (the Service exposes the API
    port alone, so scrapes stay inside the cluster)."""
    metrics_app = web.Application(middlewares=[json_errors])
    metrics_app[METRICS] = app[METRICS]
    # Its own small connection cap: a flood on this port cannot take the API's connections.
    metrics_app[GUARD] = ConnectionGuard(
        header_timeout=app[SETTINGS].header_timeout_seconds,
        max_connections=METRICS_MAX_CONNECTIONS,
    )
    metrics_app.router.add_get(contract.METRICS_PATH, metrics_endpoint)
    return metrics_app


def _image_spec(settings: Settings) -> imaging.ImageSpec:
    return imaging.ImageSpec(
        size=settings.image_size,
        preprocessing=settings.preprocessing,
        resize_filter=settings.resize_filter,
        jpeg_draft=settings.jpeg_draft,
        max_pixels=settings.max_pixels,
    )


def _tf_serving_client(settings: Settings, labels: tuple[str, ...]) -> TFServingClient:
    return TFServingClient(
        settings.tf_serving_target,
        model_name=settings.model_name,
        signature_name=settings.signature_name,
        input_name=settings.input_name,
        output_name=settings.output_name,
        deadline_seconds=settings.model_deadline_seconds,
        model_version=settings.model_version,
        version_labels=labels,
    )


def connection_guard(settings: Settings) -> ConnectionGuard:
    return ConnectionGuard(
        header_timeout=settings.header_timeout_seconds, max_connections=settings.max_connections
    )


# aiohttp's connection settings, the same for `python -m gateway` and the tests.
KEEPALIVE_TIMEOUT = 75.0  # seconds an idle keep-alive connection stays open (as web.run_app)


def make_runner(app: web.Application, **kwargs: Any) -> GatewayRunner:
    """The runner that serves `app` with its connection guards (see gateway/protocol.py)."""
    return GatewayRunner(
        app,
        guard=app[GUARD],
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        auto_decompress=False,  # bodies are never inflated (Content-Encoding is refused)
        **kwargs,
    )
