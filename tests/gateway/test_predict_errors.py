"""Every way a prediction fails gets a 4xx/5xx JSON answer, and the service carries on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest

from gateway import tfserving
from tests.gateway.client import (
    post_image,
    post_url,
    samples,
)
from tests.gateway.support import (
    RED_PNG,
    ImageServer,
    RunningGateway,
    fake_dns,
    solid,
)
from tools.fake_tfserving import FakeTFServing, State

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


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
        # Short only where the timeout is what is tested: a loaded machine may take longer than
        # 0.3 s to serve and check the other cases.
        download_timeout_seconds=0.3 if status == 504 else 10.0,
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


async def test_metrics(
    gateway: RunningGateway, http: aiohttp.ClientSession, image_server: ImageServer
) -> None:
    assert (await post_url(http, gateway, image_server.url("/red.png")))[0] == 200
    assert (await post_image(http, gateway, RED_PNG))[0] == 200
    assert (await post_image(http, gateway, b"junk"))[0] == 422
    async with http.get(gateway.metrics_url()) as r:
        assert r.status == 200
        assert r.content_type == "text/plain"
        found = samples(await r.text())
    predict = "/predict"
    assert found[("gateway_requests_total", (("route", predict), ("status", "200")))] == 2
    assert found[("gateway_requests_total", (("route", predict), ("status", "422")))] == 1
    assert found[("gateway_errors_total", (("reason", "invalid_image"), ("route", predict)))] == 1
    stage = "gateway_stage_duration_seconds_count"
    assert found[(stage, (("stage", "download"),))] == 1
    assert found[(stage, (("stage", "decode"),))] == 3
    assert found[(stage, (("stage", "model"),))] == 2
    assert found[("gateway_request_duration_seconds_count", (("route", predict),))] == 3
    decode_cpu = found[("gateway_decode_cpu_seconds_total", ())]
    assert 0 < decode_cpu <= found[(stage.replace("count", "sum"), (("stage", "decode"),))]


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
