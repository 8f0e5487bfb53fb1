"""Predictions end to end over loopback HTTP: real aiohttp server, image server and a gRPC fake
TF Serving; what arrives at the model and what the client gets back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from gateway.settings import CLOTHING_LABELS
from tests.gateway.client import (
    expected_probabilities,
    post_image,
    post_url,
)
from tests.gateway.support import (
    RED_JPEG,
    RED_PNG,
    ImageServer,
    RunningGateway,
    encode,
    photo,
)
from tools.fake_tfserving import FakeTFServing, fake_logits

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


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
    assert body["model"] == {
        "name": "clothing-model",
        "version": 1,
        "signature": "serving_default",
        "label": None,
    }


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
