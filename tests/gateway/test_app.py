"""The whole gateway over HTTP on loopback: real aiohttp server, real image server, real gRPC
fake TF Serving."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gateway import tfserving
from gateway.app import LIMIT
from gateway.settings import CLOTHING_LABELS
from tests.gateway.support import (
    RED_JPEG,
    RED_PNG,
    ImageServer,
    RunningGateway,
    encode,
    fake_dns,
    photo,
    solid,
)
from tools.fake_tfserving import FakeTFServing, State, fake_logits

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


async def post_image(
    http: aiohttp.ClientSession, gw: RunningGateway, body: bytes, ctype: str = "image/png"
) -> tuple[int, dict[str, Any]]:
    async with http.post(gw.url("/predict"), data=body, headers={"Content-Type": ctype}) as r:
        return r.status, await r.json()


async def post_url(
    http: aiohttp.ClientSession, gw: RunningGateway, url: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(gw.url("/predict"), json={"url": url}) as r:
        return r.status, await r.json()


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def expected_probabilities(pixel: tuple[float, float, float]) -> np.ndarray:
    tensor = np.broadcast_to(np.array(pixel, dtype=np.float32), (1, 4, 4, 3))
    return softmax(fake_logits(tensor, 10)[0].astype(np.float64))


async def test_upload_answers_probabilities_top_k_and_model(
    gateway: RunningGateway, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    status, body = await post_image(http, gateway, RED_PNG)
    assert status == 200, body
    # Red (255, 0, 0) under xception scaling is (1, -1, -1) in every pixel.
    assert fake_tfs.last_input is not None
    assert fake_tfs.last_input.shape == (1, 299, 299, 3)
    assert fake_tfs.last_input.dtype == np.float32
    np.testing.assert_allclose(fake_tfs.last_input[0, 0, 0], [1, -1, -1])
    expected = expected_probabilities((1, -1, -1))
    assert list(body["predictions"]) == list(CLOTHING_LABELS)
    np.testing.assert_allclose(list(body["predictions"].values()), expected, rtol=1e-5)
    order = np.argsort(-expected, kind="stable")[:3]
    assert [t["label"] for t in body["top"]] == [CLOTHING_LABELS[i] for i in order]
    assert body["top"][0]["probability"] == pytest.approx(expected.max(), rel=1e-5)
    assert body["model"] == {"name": "clothing-model", "version": 1, "signature": "serving_default"}


@pytest.mark.parametrize(
    ("mode", "pixel"),
    [
        ("caffe", (0 - 103.939, 0 - 116.779, 255 - 123.68)),  # BGR order, ImageNet means
        ("resnet", (0 - 103.939, 0 - 116.779, 255 - 123.68)),
        ("unit", (1.0, 0.0, 0.0)),
        ("none", (255.0, 0.0, 0.0)),
    ],
)
async def test_preprocessing_setting_reaches_the_model(
    mode: str,
    pixel: tuple[float, float, float],
    gateway_factory: Factory,
    http: aiohttp.ClientSession,
    fake_tfs: FakeTFServing,
) -> None:
    gw = await gateway_factory(preprocessing=mode, image_size=64, top_k=2)
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 200, body
    assert fake_tfs.last_input is not None
    assert fake_tfs.last_input.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(fake_tfs.last_input[0, 10, 10], pixel, rtol=1e-5)
    np.testing.assert_allclose(
        list(body["predictions"].values()), expected_probabilities(pixel), rtol=1e-4, atol=1e-12
    )
    assert len(body["top"]) == 2


async def test_softmax_off_returns_raw_scores(
    gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(softmax=False, preprocessing="none")
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 200
    raw = fake_logits(np.full((1, 2, 2, 3), (255, 0, 0), np.float32), 10)[0]
    np.testing.assert_allclose(list(body["predictions"].values()), raw, rtol=1e-5)


@pytest.mark.parametrize("tensor_content", [False, True])
async def test_either_response_encoding(
    tensor_content: bool,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    fake_tfs: FakeTFServing,
) -> None:
    fake_tfs.behaviour.tensor_content = tensor_content
    status, body = await post_image(http, gateway, RED_PNG)
    assert status == 200
    np.testing.assert_allclose(
        list(body["predictions"].values()), expected_probabilities((1, -1, -1)), rtol=1e-5
    )


async def test_url_download(
    gateway: RunningGateway, http: aiohttp.ClientSession, image_server: ImageServer
) -> None:
    status, body = await post_url(http, gateway, image_server.url("/red.png"))
    assert status == 200, body
    assert image_server.hits == ["/red.png"]


@pytest.mark.parametrize("ctype", ["image/jpeg", "application/octet-stream", "image/x-anything"])
async def test_raw_upload_content_types(
    ctype: str, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    status, _ = await post_image(http, gateway, RED_JPEG, ctype)
    assert status == 200


async def test_multipart_upload(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("note", "ignored")
    form.add_field("file", RED_PNG, filename="red.png", content_type="image/png")
    async with http.post(gateway.url("/predict"), data=form) as r:
        assert r.status == 200, await r.text()
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("note", "no file here")
    async with http.post(gateway.url("/predict"), data=form) as r:
        assert r.status == 400
        assert "file" in (await r.json())["error"]


async def test_upload_of_a_big_photo(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    status, body = await post_image(http, gateway, encode(photo(), "JPEG"), "image/jpeg")
    assert status == 200
    assert sum(body["predictions"].values()) == pytest.approx(1.0)


async def _chunked(data: bytes):  # no Content-Length: the gateway must count while reading
    for i in range(0, len(data), 8192):
        yield data[i : i + 8192]


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda: ({"Content-Type": "text/plain"}, b"hello"), 415),
        (lambda: ({}, b"hello"), 415),
        (lambda: ({"Content-Type": "application/json"}, b"{not json"), 400),
        (lambda: ({"Content-Type": "application/json"}, b'{"uri": "x"}'), 400),
        (lambda: ({"Content-Type": "application/json"}, b'["http://x"]'), 400),
        (lambda: ({"Content-Type": "application/json"}, b'{"url": 5}'), 400),
        (lambda: ({"Content-Type": "application/json"}, b"x" * 70_000), 413),
        (lambda: ({"Content-Type": "image/png"}, b""), 422),
        (lambda: ({"Content-Type": "image/png"}, b"not an image at all"), 422),
        (lambda: ({"Content-Type": "image/jpeg"}, RED_JPEG[:200]), 422),
        (lambda: ({"Content-Type": "image/png"}, bytes(300 * 1024)), 413),
        (lambda: ({"Content-Type": "image/png"}, _chunked(bytes(300 * 1024))), 413),
        (lambda: ({"Content-Type": "image/png"}, encode(Image.new("L", (1200, 1000)), "PNG")), 413),
    ],
    ids=[
        "text-415",
        "no-type-415",
        "bad-json",
        "no-url",
        "not-object",
        "url-not-string",
        "json-too-big",
        "empty",
        "not-image",
        "truncated",
        "too-big",
        "too-big-chunked",
        "too-many-pixels",
    ],
)
async def test_bad_input_gets_4xx_json_and_service_continues(
    send: Callable[[], tuple[dict[str, str], Any]],
    status: int,
    gateway_factory: Factory,
    http: aiohttp.ClientSession,
) -> None:
    gw = await gateway_factory(max_download_bytes=256 * 1024, max_pixels=1_000_000)
    headers, data = send()
    no_auto = () if headers else ("Content-Type",)  # else aiohttp adds octet-stream itself
    async with http.post(
        gw.url("/predict"), data=data, headers=headers, skip_auto_headers=no_auto
    ) as r:
        assert r.status == status, await r.text()
        assert r.content_type == "application/json"
        assert isinstance((await r.json())["error"], str)
    assert (await post_image(http, gw, RED_PNG))[0] == 200


SSRF_TARGETS = [
    "http://127.0.0.1:{port}/red.png",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/red.png",
    "http://[::ffff:127.0.0.1]:{port}/red.png",
    "http://0.0.0.0:{port}/red.png",
    "http://100.64.0.1/",
    "http://localhost:{port}/red.png",
    "http://2130706433:{port}/red.png",
    "http://evil.example:{port}/red.png",
    "http://metadata.example/latest/meta-data/",
    "http://images.test:{port}/redirect-to?to=http://169.254.169.254/",
    "http://images.test:{port}/redirect-to?to=http://evil.example:{port}/red.png",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("target", SSRF_TARGETS)
async def test_ssrf_targets_are_refused(
    target: str, gateway_factory: Factory, http: aiohttp.ClientSession, image_server: ImageServer
) -> None:
    dns = fake_dns(
        {
            "images.test": ["127.0.0.1"],  # the one allowlisted name
            "evil.example": ["10.0.0.1"],
            "metadata.example": ["169.254.169.254"],
        }
    )
    gw = await gateway_factory(allowed_internal="images.test", lookup=dns)
    url = target.format(port=image_server.port)
    status, body = await post_url(http, gw, url)
    assert status == 400, body
    assert image_server.hits in ([], ["/redirect-to"])  # nothing internal was fetched
    ok_status, _ = await post_url(http, gw, image_server.url("/red.png", "images.test"))
    assert ok_status == 200  # and the allowlisted name still works


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/page.html", 422),
        ("/truncated.jpg", 422),
        ("/big.bin", 413),
        ("/chunked-big", 413),
        ("/bomb.png", 413),
        ("/status/404", 400),
        ("/status/500", 400),
        ("/redirect/4", 400),
        ("/trickle", 504),
    ],
)
async def test_download_errors(
    path: str,
    status: int,
    gateway_factory: Factory,
    http: aiohttp.ClientSession,
    image_server: ImageServer,
) -> None:
    gw = await gateway_factory(
        allowed_internal="127.0.0.1",
        max_download_bytes=100 * 1024,
        max_pixels=1_000_000,
        download_timeout_seconds=0.3,
    )
    got, body = await post_url(http, gw, image_server.url(path))
    assert got == status, body
    assert (await post_url(http, gw, image_server.url("/red.jpg")))[0] == 200


@pytest.mark.parametrize(
    ("fail", "status"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 503),
        (grpc.StatusCode.INTERNAL, 502),
    ],
)
async def test_tf_serving_failures(
    fail: grpc.StatusCode,
    status: int,
    gateway: RunningGateway,
    http: aiohttp.ClientSession,
    fake_tfs: FakeTFServing,
) -> None:
    fake_tfs.behaviour.fail = fail
    got, body = await post_image(http, gateway, RED_PNG)
    assert got == status and "error" in body
    fake_tfs.behaviour.fail = None
    assert (await post_image(http, gateway, RED_PNG))[0] == 200


async def test_slow_model_hits_the_deadline(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(model_deadline_seconds=0.2)
    fake_tfs.behaviour.latency_s = 1.0
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 504, body


async def test_model_not_loaded_is_503_and_not_ready(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(ready_cache_seconds=0)
    fake_tfs.behaviour.state = State.LOADING
    assert (await post_image(http, gw, RED_PNG))[0] == 503
    async with http.get(gw.url("/readyz")) as r:
        assert r.status == 503
        assert "LOADING" in (await r.json())["error"]
    fake_tfs.behaviour.state = State.AVAILABLE
    async with http.get(gw.url("/readyz")) as r:
        assert r.status == 200


async def test_tf_serving_down(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(ready_cache_seconds=0)
    await fake_tfs.stop()
    assert (await post_image(http, gw, RED_PNG))[0] == 503
    async with http.get(gw.url("/readyz")) as r:
        assert r.status == 503
    async with http.get(gw.url("/healthz")) as r:
        assert r.status == 200  # alive, just not ready


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"labels": "a,b,c"}, 502),  # model has 10 classes
        ({"output_name": "probabilities"}, 502),
        ({"input_name": "image"}, 502),
        ({"signature_name": "other"}, 502),
        ({"model_name": "other"}, 503),
    ],
)
async def test_model_mismatch_is_a_gateway_error(
    overrides: dict[str, Any], status: int, gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(**overrides)
    got, body = await post_image(http, gw, RED_PNG)
    assert got == status, body


async def test_readyz_is_cached(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(ready_cache_seconds=60)
    for _ in range(5):
        async with http.get(gw.url("/readyz")) as r:
            assert r.status == 200
    assert fake_tfs.status_calls == 1


async def test_unknown_routes_are_json(gateway: RunningGateway, http: aiohttp.ClientSession):
    async with http.get(gateway.url("/nope")) as r:
        assert r.status == 404 and "error" in await r.json()
    async with http.get(gateway.url("/predict")) as r:
        assert r.status == 405 and "error" in await r.json()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics(
    gateway: RunningGateway, http: aiohttp.ClientSession, image_server: ImageServer
) -> None:
    assert (await post_url(http, gateway, image_server.url("/red.png")))[0] == 200
    assert (await post_image(http, gateway, RED_PNG))[0] == 200
    assert (await post_image(http, gateway, b"junk"))[0] == 422
    async with http.get(gateway.url("/metrics")) as r:
        assert r.status == 200
        assert r.content_type == "text/plain"
        samples = _samples(await r.text())
    predict = "/predict"
    assert samples[("gateway_requests_total", (("route", predict), ("status", "200")))] == 2
    assert samples[("gateway_requests_total", (("route", predict), ("status", "422")))] == 1
    assert samples[("gateway_errors_total", (("reason", "invalid_image"), ("route", predict)))] == 1
    stage = "gateway_stage_duration_seconds_count"
    assert samples[(stage, (("stage", "download"),))] == 1
    assert samples[(stage, (("stage", "decode"),))] == 3
    assert samples[(stage, (("stage", "model"),))] == 2
    assert samples[("gateway_request_duration_seconds_count", (("route", predict),))] == 3
    decode_cpu = samples[("gateway_decode_cpu_seconds_total", ())]
    assert 0 < decode_cpu <= samples[(stage.replace("count", "sum"), (("stage", "decode"),))]


async def test_one_grpc_channel_for_all_requests(
    monkeypatch: pytest.MonkeyPatch,
    gateway_factory: Factory,
    http: aiohttp.ClientSession,
) -> None:
    created: list[str] = []
    real = tfserving.grpc.aio.insecure_channel

    def counting(target: str, **kwargs: Any) -> Any:
        created.append(target)
        options = dict(kwargs.get("options") or [])
        assert options["grpc.lb_policy_name"] == "round_robin"
        return real(target, **kwargs)

    monkeypatch.setattr(tfserving.grpc.aio, "insecure_channel", counting)
    gw = await gateway_factory()
    results = await asyncio.gather(*(post_image(http, gw, solid((i, 0, 0))) for i in range(8)))
    assert [status for status, _ in results] == [200] * 8
    assert len(created) == 1


WEIRD_URLS = [
    "http://[::1",
    "http://exa mple.com/x.png",
    "http://" + "a" * 300 + ".com/x.png",
    "http://☃.example/x.png",
    "http://:80/x.png",
    "http:///x.png",
    "http://images.test:99999/x.png",
    "HTTP://IMAGES.TEST:1/x.png",
    "javascript:alert(1)",
    "//images.test/x.png",
    " ",
    "http://images.test/\r\nHost: evil",
]


@pytest.mark.parametrize("url", WEIRD_URLS)
async def test_weird_urls_are_client_errors(
    url: str, gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(lookup=fake_dns({}))
    status, body = await post_url(http, gw, url)
    assert 400 <= status < 500, body
    assert (await post_image(http, gw, RED_PNG))[0] == 200


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("multipart/form-data", b"--x\r\n\r\nbroken"),
        ("multipart/form-data; boundary=x", b"not multipart at all"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
        ("multipart/mixed; boundary=x", b"--x--\r\n"),
        ("application/json; charset=latin-1", '{"url": "é"}'.encode("latin-1")),
        ("image/png; charset=utf-8", b"\x00" * 10),
    ],
)
async def test_malformed_bodies_are_client_errors(
    ctype: str, body: bytes, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.post(gateway.url("/predict"), data=body, headers={"Content-Type": ctype}) as r:
        assert 400 <= r.status < 500, await r.text()
    assert (await post_image(http, gateway, RED_PNG))[0] == 200


# Load shedding. The fake's `hold` keeps requests inside the model call, so "in flight" is a
# state the test controls, not a timing guess.


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def scrape(http: aiohttp.ClientSession, gw: RunningGateway) -> dict[Any, float]:
    async with http.get(gw.url("/metrics")) as r:
        assert r.status == 200
        return _samples(await r.text())


IN_FLIGHT = ("gateway_requests_in_flight", ())
SHED = ("gateway_errors_total", (("reason", "overloaded"), ("route", "/predict")))


async def assert_capacity(
    http: aiohttp.ClientSession, gw: RunningGateway, fake: FakeTFServing, n: int
) -> None:
    """Exactly n predicts run at once: n are held in the model, the next is refused."""
    hold = asyncio.Event()
    fake.behaviour.hold = hold
    first = fake.predict_calls
    held = [asyncio.create_task(post_image(http, gw, RED_PNG)) for _ in range(n)]
    try:
        await until(lambda: fake.predict_calls == first + n)  # times out if a slot leaked
        status, body = await post_image(http, gw, RED_PNG)
        assert status == 503, body
    finally:
        hold.set()
        fake.behaviour.hold = None
    assert [status for status, _ in await asyncio.gather(*held)] == [200] * n


async def test_overload_is_refused_at_once_with_retry_after(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2)
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    held = [asyncio.create_task(post_image(http, gw, RED_PNG)) for _ in range(2)]
    never = asyncio.Event()

    async def endless_body():  # the gateway must answer without waiting for it
        yield b"x" * 1024
        await never.wait()

    try:
        await until(lambda: fake_tfs.predict_calls == 2)
        async with (
            asyncio.timeout(1),  # not waiting for a slot nor for the body
            http.post(
                gw.url("/predict"), data=endless_body(), headers={"Content-Type": "image/png"}
            ) as r,
        ):
            assert r.status == 503
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Connection"] == "close"  # the retry may reach another pod
            assert "overloaded" in (await r.json())["error"]
        # Refused before the body is looked at: this would otherwise be a 415.
        async with http.post(gw.url("/predict"), data=b"x", headers={"Content-Type": "a/b"}) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
        for path in ("/healthz", "/readyz"):
            async with http.get(gw.url(path)) as r:
                assert r.status == 200, path
        samples = await scrape(http, gw)
        assert samples[IN_FLIGHT] == 2
        assert samples[SHED] == 2
        assert samples[("gateway_requests_total", (("route", "/predict"), ("status", "503")))] == 2
        assert fake_tfs.predict_calls == 2  # the refused requests never reached the model
    finally:
        never.set()
        hold.set()
    assert [status for status, _ in await asyncio.gather(*held)] == [200, 200]
    assert (await scrape(http, gw))[IN_FLIGHT] == 0
    # Refusals neither took nor gave back a slot: the limit is still exactly 2.
    await assert_capacity(http, gw, fake_tfs, 2)


async def test_slots_come_back_after_errors(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2, max_download_bytes=4096)
    assert (await post_image(http, gw, b"junk"))[0] == 422
    assert (await post_image(http, gw, RED_PNG, "text/plain"))[0] == 415
    assert (await post_image(http, gw, bytes(8192)))[0] == 413
    assert (await post_image(http, gw, b"{", "application/json"))[0] == 400
    fake_tfs.behaviour.fail = grpc.StatusCode.UNAVAILABLE
    assert (await post_image(http, gw, RED_PNG))[0] == 503
    fake_tfs.behaviour.fail = None
    fake_tfs.behaviour.num_classes = 3  # labels no longer match: 502
    assert (await post_image(http, gw, RED_PNG))[0] == 502
    fake_tfs.behaviour.num_classes = 10
    samples = await scrape(http, gw)
    assert samples[IN_FLIGHT] == 0
    assert SHED not in samples or samples[SHED] == 0
    await assert_capacity(http, gw, fake_tfs, 2)


@pytest.mark.parametrize("cancel", [False, True], ids=["handler-finishes", "handler-cancelled"])
async def test_slot_comes_back_after_client_disconnect(
    cancel: bool, gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory(max_in_flight=2, handler_cancellation=cancel)
    hold = asyncio.Event()
    fake_tfs.behaviour.hold = hold
    try:
        client = asyncio.create_task(post_image(http, gw, RED_PNG))
        await until(lambda: fake_tfs.predict_calls == 1)
        assert (await scrape(http, gw))[IN_FLIGHT] == 1
        client.cancel()  # the client gives up: its connection is closed
        with contextlib.suppress(asyncio.CancelledError):
            await client
        if cancel:  # aiohttp cancels the handler, which must give its slot back at once
            await until(lambda: gw.app[LIMIT].count == 0)
    finally:
        hold.set()
        fake_tfs.behaviour.hold = None
    await until(lambda: gw.app[LIMIT].count == 0)
    assert (await scrape(http, gw))[IN_FLIGHT] == 0
    await assert_capacity(http, gw, fake_tfs, 2)
