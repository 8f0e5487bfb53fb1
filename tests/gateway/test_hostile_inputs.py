"""Hostile input by class: parsers and resolvers raise many kinds of exceptions, and every one
must end as a 4xx JSON answer (never a 500, never a traceback), with the service unharmed."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from gateway.netguard import UnresolvableHostError, system_lookup
from tests.gateway.client import post_image, post_url
from tests.gateway.support import RED_PNG, RunningGateway, fake_dns
from tools.fake_tfserving import FakeTFServing

pytestmark = pytest.mark.asyncio
Factory = Callable[..., Awaitable[RunningGateway]]


async def assert_client_error(r: aiohttp.ClientResponse, status: int | None = None) -> Any:
    text = await r.text()
    assert 400 <= r.status < 500, (r.status, text)
    if status is not None:
        assert r.status == status, text
    assert r.content_type == "application/json"
    body = json.loads(text)
    assert isinstance(body["error"], str) and body["error"]
    return body


JSON_BODIES = {
    "nested-arrays": b"[" * 30_000 + b"]" * 30_000,  # RecursionError in json, under 64 KiB
    "nested-objects": b'{"url":' * 8_000 + b'"x"' + b"}" * 8_000,
    "huge-integer": b'{"url": "http://x/", "n": ' + b"9" * 5000 + b"}",
    "not-utf8": b'{"url": "\xff\xfe"}',
    "lone-surrogate": b'{"url": "http://\\ud800.example/x.png"}',
    "nul-in-url": b'{"url": "http://images.test/\\u0000.png"}',
    "url-too-long": json.dumps({"url": "http://images.test/" + "a" * 9000}).encode(),
    "url-list": b'{"url": ["http://images.test/x.png"]}',
    "empty": b"",
    "bare-string": b'"http://images.test/x.png"',
    "null": b"null",
    "nan": b'{"url": NaN}',
}


@pytest.mark.parametrize("body", list(JSON_BODIES.values()), ids=list(JSON_BODIES))
async def test_hostile_json_is_a_400(
    body: bytes, gateway_factory: Factory, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(lookup=fake_dns({}))
    headers = {"Content-Type": "application/json"}
    async with http.post(gw.url("/predict"), data=body, headers=headers) as r:
        await assert_client_error(r, 400)
    assert (await post_image(http, gw, RED_PNG))[0] == 200


HOSTILE_HOSTS = [
    "a" * 64 + ".example",  # label longer than IDNA allows: the resolver's codec refuses it
    "xn--a.example",  # invalid punycode
    "xn--zz",
    "exa\u200dmple.com",  # zero-width joiner
    "\ud800.example",
    "a" * 250 + ".example",
    "[::1",
    "ex ample.com",
    "x%00y.example",
    ".example",
    "a..b.example",
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS, ids=range(len(HOSTILE_HOSTS)))
async def test_hostile_host_names_are_a_400_with_the_real_resolver(
    host: str, gateway_factory: Factory, http: aiohttp.ClientSession, caplog: Any
) -> None:
    gw = await gateway_factory()  # system_lookup: these names fail before any DNS query
    caplog.set_level(logging.WARNING)
    status, body = await post_url(http, gw, f"http://{host}/x.png")
    assert status == 400, body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_resolver_turns_idna_failures_into_unresolvable_hosts() -> None:
    with pytest.raises(UnresolvableHostError, match="not a valid host name"):
        await system_lookup("a" * 64 + ".example", 80)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/predict", "POST"),
        ("PUT", "/predict", "POST"),
        ("DELETE", "/predict", "POST"),
        ("POST", "/healthz", "GET,HEAD"),
        ("PATCH", "/readyz", "GET,HEAD"),
    ],
)
async def test_405_names_the_allowed_methods(
    method: str, path: str, allow: str, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.request(method, gateway.url(path)) as r:
        await assert_client_error(r, 405)
        assert r.headers["Allow"] == allow


async def test_404_is_json(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    async with http.get(gateway.url("/nope")) as r:
        await assert_client_error(r, 404)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
async def test_compressed_uploads_are_refused_not_inflated(
    encoding: str, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    headers = {"Content-Type": "image/png", "Content-Encoding": encoding}
    async with http.post(
        gateway.url("/predict"), data=gzip.compress(RED_PNG), headers=headers
    ) as r:
        body = await assert_client_error(r, 415)
        assert encoding in body["error"]


MULTIPART = {
    "no-boundary": ("multipart/form-data", b"--x\r\n\r\nbroken"),
    "not-multipart": ("multipart/form-data; boundary=x", b"not multipart at all"),
    "no-disposition": ("multipart/form-data; boundary=x", b"--x\r\n\r\nabc\r\n--x--\r\n"),
    "empty-boundary": ('multipart/form-data; boundary=""', b"--\r\n\r\n"),
    "nested": (
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\n--y--\r\n--x--\r\n",
    ),
    "bad-part-encoding": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        b"Content-Transfer-Encoding: rot13\r\n\r\nabc\r\n--x--\r\n",
    ),
    "mixed": ("multipart/mixed; boundary=x", b"--x--\r\n"),
}


@pytest.mark.parametrize("ctype_body", list(MULTIPART.values()), ids=list(MULTIPART))
async def test_hostile_multipart_is_a_4xx(
    ctype_body: tuple[str, bytes], gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    ctype, body = ctype_body
    async with http.post(gateway.url("/predict"), data=body, headers={"Content-Type": ctype}) as r:
        await assert_client_error(r)
    assert (await post_image(http, gateway, RED_PNG))[0] == 200


@pytest.mark.parametrize(
    "scores",
    [
        [float("nan")] + [0.0] * 9,
        [float("inf")] + [0.0] * 9,
        [0.0] * 9 + [float("-inf")],
    ],
    ids=["nan", "inf", "-inf"],
)
@pytest.mark.parametrize("softmax", [True, False])
async def test_non_finite_model_output_is_a_502_naming_the_output(
    scores: list[float],
    softmax: bool,
    gateway_factory: Factory,
    http: aiohttp.ClientSession,
    fake_tfs: FakeTFServing,
) -> None:
    gw = await gateway_factory(softmax=softmax)
    fake_tfs.behaviour.scores = scores
    async with http.post(
        gw.url("/predict"), data=RED_PNG, headers={"Content-Type": "image/png"}
    ) as r:
        text = await r.text()
        assert r.status == 502, text
        error = json.loads(text)["error"]  # strict JSON: no NaN literal anywhere
        assert "dense_7" in error and "NaN or infinite" in error
    fake_tfs.behaviour.scores = None
    assert (await post_image(http, gw, RED_PNG))[0] == 200


async def test_finite_extreme_scores_still_give_valid_probabilities(
    gateway_factory: Factory, http: aiohttp.ClientSession, fake_tfs: FakeTFServing
) -> None:
    gw = await gateway_factory()
    fake_tfs.behaviour.scores = [3e38, -3e38] + [0.0] * 8
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 200, body
    probabilities = np.array(list(body["predictions"].values()))
    assert probabilities[0] == 1.0 and probabilities[1:].sum() == 0.0
