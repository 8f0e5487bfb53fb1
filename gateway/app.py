"""HTTP API (aiohttp): POST /predict, GET /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
from aiohttp import BodyPartReader, web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import contract, imaging
from gateway.download import Downloader
from gateway.errors import (
    BadRequestError,
    GatewayError,
    ModelError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)
from gateway.metrics import Metrics
from gateway.netguard import Lookup, system_lookup
from gateway.settings import Settings
from gateway.tfserving import CachedReadiness, Prediction, TFServingClient

log = logging.getLogger("gateway")

JSON_BODY_LIMIT = 64 * 1024
CHUNK = 64 * 1024
RAW_IMAGE_TYPES = ("application/octet-stream",)
FILE_FIELDS = ("file", "image")

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STATE = web.AppKey("state", dict)


class InFlightLimit:
    """At most `limit` POST /predict at once; the next one is refused at once, not queued.

    A plain counter is enough: handlers run on one event loop thread, and nothing awaits
    between the check and the increment.
    """

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.count = 0
        self._gauge = metrics.in_flight

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.count >= self.limit:
            raise OverloadedError(
                f"gateway overloaded ({self.limit} requests in flight), retry shortly"
            )
        self.count += 1
        self._gauge.set(self.count)
        try:
            yield
        finally:  # success, GatewayError, any exception, and cancellation (client gone)
            self.count -= 1
            self._gauge.set(self.count)


LIMIT = web.AppKey("in_flight_limit", InFlightLimit)


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json")


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
        response = _json(exc.status, {"error": exc.message})
        response.headers.update(exc.headers)
        if exc.close_connection:
            response.force_close()
    except web.HTTPException as exc:  # router 404/405 and aiohttp's own limits
        reason = "http_" + str(exc.status)
        response = _json(exc.status, {"error": exc.reason})
    except Exception:
        log.exception("unexpected error on %s", route)
        reason = "internal"
        response = _json(500, {"error": "internal error"})
    if reason is not None:
        metrics.errors.labels(route, reason).inc()
        # Refusals are counted, not logged: a line each would cost CPU when there is none.
        if response.status >= 500 and reason != OverloadedError.reason:
            log.warning("%s %s -> %d: %s", request.method, route, response.status, reason)
    metrics.requests.labels(route, str(response.status)).inc()
    metrics.latency.labels(route).observe(time.perf_counter() - start)
    return response


class _Chunks(Protocol):
    async def read_chunk(self, size: int = ...) -> bytes: ...


class _Body:
    """The request body as read_chunk(n) -> bytes, b"" at the end (like a multipart part)."""

    def __init__(self, request: web.Request) -> None:
        self._content = request.content

    async def read_chunk(self, size: int = CHUNK) -> bytes:
        return await self._content.read(size)


async def _read_capped(source: _Chunks, limit: int, declared: int | None) -> bytes:
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(f"body is {declared} bytes, more than {limit}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await source.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit:  # Content-Length may be absent (chunked) or wrong
            raise PayloadTooLargeError(f"body is more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_bytes(request: web.Request, settings: Settings) -> bytes:
    """The image to classify: uploaded (raw or multipart) or downloaded from {"url": ...}."""
    if "Content-Type" not in request.headers:
        raise UnsupportedMediaTypeError("missing Content-Type: send application/json or image/*")
    ctype = request.content_type
    limit = settings.max_download_bytes
    try:
        async with asyncio.timeout(settings.download_timeout_seconds):
            if ctype == "application/json":
                body = await _read_capped(_Body(request), JSON_BODY_LIMIT, request.content_length)
                url = _url_from_json(body)
            elif ctype.startswith("image/") or ctype in RAW_IMAGE_TYPES:
                return await _read_capped(_Body(request), limit, request.content_length)
            elif ctype == "multipart/form-data":
                return await _multipart_file(request, limit)
            else:
                raise UnsupportedMediaTypeError(
                    f"unsupported Content-Type {ctype!r}: use application/json with a url, "
                    "image/*, or multipart/form-data"
                )
    except TimeoutError:
        raise RequestTimeoutError("request body arrived too slowly") from None
    downloader: Downloader = request.app[STATE]["downloader"]
    with request.app[METRICS].stage["download"].time():
        return await downloader.fetch(url)


def _url_from_json(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequestError(f"body is not valid JSON: {exc}") from None
    url = payload.get("url") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise BadRequestError('JSON body must be an object with a "url" string')
    return url


async def _multipart_file(request: web.Request, limit: int) -> bytes:
    try:
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and (part.filename or part.name in FILE_FIELDS):
                return await _read_capped(part, limit, None)
    except ValueError as exc:  # malformed multipart framing
        raise BadRequestError(f"malformed multipart body: {exc}") from None
    raise BadRequestError('multipart body has no file part (field "file" or "image")')


def _answer(prediction: Prediction, settings: Settings) -> dict[str, Any]:
    labels = settings.labels
    scores = prediction.scores.astype(np.float64)
    if scores.shape[0] != len(labels):
        raise ModelError(
            f"model returned {scores.shape[0]} scores but {len(labels)} labels are configured"
        )
    if settings.softmax:
        exp = np.exp(scores - scores.max())
        scores = exp / exp.sum()
    order = np.argsort(-scores, kind="stable")[: min(settings.top_k, len(labels))]
    return {
        "predictions": {label: float(s) for label, s in zip(labels, scores, strict=True)},
        "top": [{"label": labels[i], "probability": float(scores[i])} for i in order],
        "model": {
            "name": prediction.model_name,
            "version": prediction.model_version,
            "signature": prediction.signature_name,
        },
    }


def _encoded_request(
    data: bytes, spec: imaging.ImageSpec, client: TFServingClient, metrics: Metrics
) -> bytes:
    """Worker thread: bytes -> decoded, resized, scaled -> serialised PredictRequest."""
    start = time.thread_time()
    try:
        return client.encode_request(imaging.prepare(data, spec).tensor)
    finally:
        metrics.decode_cpu.inc(time.thread_time() - start)


async def predict(request: web.Request) -> web.Response:
    # Taken before the body is read: a refused request costs no body buffer and no CPU.
    with request.app[LIMIT].slot():
        return await _predict(request)


async def _predict(request: web.Request) -> web.Response:
    app = request.app
    settings, metrics, state = app[SETTINGS], app[METRICS], app[STATE]
    data = await _image_bytes(request, settings)
    client: TFServingClient = state["tfserving"]
    loop = asyncio.get_running_loop()
    with metrics.stage["decode"].time():
        request_bytes = await loop.run_in_executor(
            state["executor"], _encoded_request, data, state["image_spec"], client, metrics
        )
    del data  # up to GATEWAY_MAX_DOWNLOAD_BYTES: not held while waiting for the model
    with metrics.stage["model"].time():
        prediction = await client.predict_encoded(request_bytes)
    return _json(200, _answer(prediction, settings))


async def healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    status = await request.app[STATE]["readiness"].get()
    if status.ready:
        return _json(200, {"status": "ready", "versions": list(status.versions)})
    return _json(503, {"error": f"model not ready: {status.detail}"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    settings: Settings, *, lookup: Lookup = system_lookup, **downloader: Any
) -> web.Application:
    """Build the app. Network clients are created at start-up, inside the event loop.

    lookup replaces DNS for the image downloader (tests); extra keyword arguments go to
    Downloader (e.g. ssl_context for a test CA).
    """
    app = web.Application(middlewares=[errors_and_metrics], client_max_size=JSON_BODY_LIMIT)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[LIMIT] = InFlightLimit(settings.max_in_flight, app[METRICS])
    app[STATE] = {}

    async def clients(app: web.Application) -> Any:
        state = app[STATE]
        state["image_spec"] = imaging.ImageSpec(
            size=settings.image_size,
            preprocessing=settings.preprocessing,
            resize_filter=settings.resize_filter,
            jpeg_draft=settings.jpeg_draft,
            max_pixels=settings.max_pixels,
        )
        state["executor"] = ThreadPoolExecutor(settings.threads, thread_name_prefix="decode")
        state["downloader"] = Downloader(
            settings.address_policy,
            max_bytes=settings.max_download_bytes,
            timeout=settings.download_timeout_seconds,
            max_redirects=settings.max_redirects,
            lookup=lookup,
            **downloader,
        )
        client = TFServingClient(
            settings.tf_serving_target,
            model_name=settings.model_name,
            signature_name=settings.signature_name,
            input_name=settings.input_name,
            output_name=settings.output_name,
            deadline_seconds=settings.model_deadline_seconds,
            model_version=settings.model_version,
        )
        state["tfserving"] = client
        state["readiness"] = CachedReadiness(
            client, settings.ready_cache_seconds, settings.ready_timeout_seconds
        )
        log.info(
            "gateway ready: TF Serving %s model %s, %d decode threads",
            settings.tf_serving_target,
            settings.model_name,
            settings.threads,
        )
        yield
        await state["downloader"].close()
        await client.close()
        state["executor"].shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(clients)
    app.router.add_post(contract.PREDICT_PATH, predict)
    app.router.add_get(contract.HEALTH_PATH, healthz)
    app.router.add_get(contract.READY_PATH, readyz)
    app.router.add_get(contract.METRICS_PATH, metrics_endpoint)
    return app
