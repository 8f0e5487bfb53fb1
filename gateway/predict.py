"""POST /predict: admission, the image's bytes, decode in a thread, the model call, the answer.

Order matters for overload. A request is refused at once, body unread, when every in-flight
slot is busy or its declared body does not fit the memory budget. Its bytes are then reserved
as they arrive (a slow sender holds only what it sent, and no slot). The slot, which bounds
CPU work and the decode queue, is taken only once the image is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, MultipartReader, web

from gateway import imaging
from gateway.body import (
    Body,
    Schedule,
    StreamChunks,
    TooSlowError,
    read_into,
    upload_timeout,
    url_from_json,
)
from gateway.canary import Router, Track
from gateway.download import Downloader
from gateway.errors import (
    BadRequestError,
    GatewayError,
    ModelError,
    OverloadedError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from gateway.memory import MemoryBudget, Reservation
from gateway.metrics import Metrics, TrackMetrics
from gateway.settings import Settings
from gateway.tfserving import Prediction, TFServingClient

JSON_BODY_LIMIT = 64 * 1024
RAW_IMAGE_TYPES = ("application/octet-stream",)
FILE_FIELDS = ("file", "image")
# What reading a body can raise when the client breaks the framing or goes away.
_BODY_ERRORS = (ConnectionError, web.RequestPayloadError, EOFError)
# What aiohttp's multipart parser raises on framing it cannot follow.
_MULTIPART_ERRORS = (ValueError, KeyError, LookupError, AssertionError, TypeError, RuntimeError)


class InFlightLimit:
    """At most `limit` predictions past their body at once; the next one is refused, not queued.

    A plain counter is enough: handlers run on one event loop thread, and nothing awaits
    between the check and the increment.
    """

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.count = 0
        self._gauge = metrics.in_flight

    def check(self) -> None:
        if self.count >= self.limit:
            raise OverloadedError(
                f"gateway overloaded ({self.limit} requests in flight), retry shortly"
            )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.check()
        self.count += 1
        self._gauge.set(self.count)
        try:
            yield
        finally:  # success, GatewayError, any exception, and cancellation (client gone)
            self.count -= 1
            self._gauge.set(self.count)


@dataclass
class Services:
    """What a prediction uses, created at start-up inside the event loop."""

    settings: Settings
    metrics: Metrics
    limit: InFlightLimit
    budget: MemoryBudget
    spec: imaging.ImageSpec
    executor: ThreadPoolExecutor
    downloader: Downloader
    client: TFServingClient
    router: Router
    tracks: dict[str, TrackMetrics]


async def predict(request: web.Request, services: Services) -> web.Response:
    services.limit.check()  # all slots busy: refused before anything is read
    kind = _body_kind(request)
    memory = services.budget.reservation("request body")
    try:
        with await _image(request, kind, services, memory) as image, services.limit.slot():
            return await _classify(image, services, memory)
    finally:
        memory.close()


def _body_kind(request: web.Request) -> str:
    if "Content-Type" not in request.headers:
        raise UnsupportedMediaTypeError("missing Content-Type: send application/json or image/*")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":  # never inflated: a small body could expand without bound
        raise UnsupportedMediaTypeError(f"Content-Encoding {encoding!r} is not supported")
    ctype = request.content_type
    if ctype == "application/json":
        return "json"
    if ctype.startswith("image/") or ctype in RAW_IMAGE_TYPES:
        return "raw"
    if ctype == "multipart/form-data":
        return "multipart"
    raise UnsupportedMediaTypeError(
        f"unsupported Content-Type {ctype[:100]!r}: use application/json with a url, image/*, "
        "or multipart/form-data"
    )


async def _image(request: web.Request, kind: str, services: Services, memory: Reservation) -> Body:
    """The image's bytes: the upload (raw or a multipart file part) or the URL's download."""
    settings = services.settings
    limit = JSON_BODY_LIMIT if kind == "json" else settings.max_download_bytes
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise PayloadTooLargeError(f"body is {declared} bytes, more than {limit}")
        memory.check_room(declared)  # 503 before reading a body that cannot fit now
    loop = asyncio.get_running_loop()
    now = loop.time()
    schedule = Schedule(
        now + settings.download_timeout_seconds, settings.min_upload_bytes_per_second, now
    )
    try:
        if kind == "multipart":
            body = await _multipart_file(request, limit, memory, schedule)
        else:
            body = await read_into(
                StreamChunks(request.content),
                limit=limit,
                reservation=memory,
                schedule=schedule,
                declared=declared,
            )
    except TooSlowError as exc:
        raise upload_timeout(exc, schedule, settings.download_timeout_seconds) from None
    except _BODY_ERRORS as exc:
        raise BadRequestError(f"request body incomplete: {type(exc).__name__}") from None
    if kind != "json":
        return body
    with body:
        url = url_from_json(body.bytes())
    memory.shrink_to(0)
    memory.what = "image download"
    with services.metrics.stage["download"].time():
        return await services.downloader.fetch(url, memory)


async def _multipart_file(
    request: web.Request, limit: int, memory: Reservation, schedule: Schedule
) -> Body:
    try:
        reader = await request.multipart()
        part = await _file_part(reader)
        return await read_into(part, limit=limit, reservation=memory, schedule=schedule)
    except (GatewayError, TooSlowError, *_BODY_ERRORS):
        raise
    except _MULTIPART_ERRORS as exc:  # malformed framing, headers or boundary
        raise BadRequestError(f"malformed multipart body: {str(exc)[:200]}") from None


async def _file_part(reader: MultipartReader) -> BodyPartReader:
    async for part in reader:
        if isinstance(part, BodyPartReader) and (part.filename or part.name in FILE_FIELDS):
            return part
    raise BadRequestError('multipart body has no file part (field "file" or "image")')


async def _classify(image: Body, services: Services, memory: Reservation) -> web.Response:
    loop = asyncio.get_running_loop()
    memory.what = "image decode"
    track = services.router.pick()  # before encoding: the request names the version label
    # The clock starts before the thread does: the decode's CPU time fits in its wall time.
    with services.metrics.stage["decode"].time():
        work = loop.run_in_executor(
            services.executor, _encoded_request, image, services, memory, track
        )
        try:
            request_bytes = await work
        finally:
            memory.release_after(work)  # a cancelled request's decode still holds its memory
    image.close()  # the body, up to GATEWAY_MAX_DOWNLOAD_BYTES: not held during the model call
    memory.shrink_to(len(request_bytes))
    metrics = services.tracks[track.name]
    with services.metrics.stage["model"].time(), metrics.observe():
        prediction = await services.client.predict_encoded(request_bytes)
        body = answer(prediction, services.settings, track)
    metrics.served(prediction.model_version)
    return json_response(200, body)


def _encoded_request(image: Body, services: Services, memory: Reservation, track: Track) -> bytes:
    """Decode thread: bytes -> decoded, resized, scaled -> serialised PredictRequest."""
    start = time.thread_time()
    try:
        with image.view() as view:
            tensor = imaging.prepare(view, services.spec, memory).tensor
        return services.client.encode_request(tensor, track.label)
    except MemoryError:  # the budget's estimates are conservative; this is the last resort
        raise OverloadedError(
            "not enough memory to decode this image now", reason="memory"
        ) from None
    finally:
        services.metrics.decode_cpu.inc(time.thread_time() - start)


def answer(prediction: Prediction, settings: Settings, track: Track) -> dict[str, Any]:
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
    values = scores.tolist()
    return {
        "predictions": dict(zip(labels, values, strict=True)),
        "top": [{"label": labels[i], "probability": values[i]} for i in order.tolist()],
        "model": {
            "name": prediction.model_name,
            "version": prediction.model_version,  # the one TF Serving says served it
            "signature": prediction.signature_name,
            "label": track.label,  # the version label asked for, null for none
        },
    }


def json_response(status: int, payload: dict[str, Any]) -> web.Response:
    # allow_nan=False: a NaN that slipped through would be a 500 here, not invalid JSON out.
    return web.Response(
        status=status, text=json.dumps(payload, allow_nan=False), content_type="application/json"
    )
