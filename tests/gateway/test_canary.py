"""The canary split: per request, by a seeded random.Random, to the TF Serving version label it
names; the answer says which version served it; metrics per track."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.canary import Router
from gateway.settings import load_settings
from tests.gateway.client import post_image, scrape
from tests.gateway.support import RED_PNG, RunningGateway
from tools.fake_tfserving import FakeTFServing

Factory = Callable[..., Awaitable[RunningGateway]]
LABELS = {"stable": 1, "canary": 2}
CANARY = {"canary_label": "canary", "image_size": 8}  # small tensors: many requests, fast


class NoDraws(random.Random):
    def random(self) -> float:
        raise AssertionError("the split drew a number")


def router(**settings: Any) -> Router:
    return Router(load_settings(**settings), NoDraws())


def test_without_a_canary_label_no_label_is_sent() -> None:
    plain = router()
    assert plain.tracks == (plain.stable,) and plain.labels == ()
    assert plain.pick().label is None


def test_zero_and_hundred_percent_are_exact_without_drawing() -> None:
    assert {router(canary_label="canary").pick().name for _ in range(100)} == {"stable"}
    full = router(canary_label="canary", canary_percent=100)
    assert {full.pick().label for _ in range(100)} == {"canary"}
    assert full.labels == ("stable", "canary")


def test_shares_are_tenths_of_a_percent_and_the_stable_label_may_be_the_default() -> None:
    assert Router(load_settings(canary_label="c", canary_percent="12.5")).share == 125
    default = Router(load_settings(canary_label="c", stable_label=""))
    assert default.stable.label is None and default.labels == ("c",)


def within(count: int, n: int, share: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * share) <= sigmas * math.sqrt(n * share * (1 - share))


def test_the_split_is_binomial_over_many_draws() -> None:
    split = Router(load_settings(canary_label="canary", canary_percent="0.5"), random.Random(7))
    picks = Counter(split.pick().name for _ in range(100_000))
    assert within(picks["canary"], 100_000, 0.005), picks


async def send(http: aiohttp.ClientSession, gw: RunningGateway, n: int) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = []
    queue = iter(range(n))

    async def client() -> None:
        for _ in queue:
            status, body = await post_image(http, gw, RED_PNG)
            assert status == 200, body
            models.append(body["model"])

    await asyncio.gather(*(client() for _ in range(16)))
    return models


@pytest.fixture
def two_versions(fake_tfs: FakeTFServing) -> FakeTFServing:
    fake_tfs.behaviour.versions = (1, 2)
    fake_tfs.behaviour.labels = dict(LABELS)
    return fake_tfs


@pytest.mark.asyncio
async def test_ten_percent_go_to_the_canary_and_each_answer_names_its_version(
    gateway_factory: Factory, two_versions: FakeTFServing, http: aiohttp.ClientSession
) -> None:
    n = 1000  # through the whole gateway; the Router alone is tested over 100 000 draws
    gw = await gateway_factory(**CANARY, canary_percent=10, rng=random.Random(2026))
    models = await send(http, gw, n)
    served = Counter((m["label"], m["version"]) for m in models)
    assert set(served) == {("stable", 1), ("canary", 2)}, served  # as TF Serving reported
    canary = served[("canary", 2)]
    assert within(canary, n, 0.10), canary
    assert two_versions.calls_by_version == {1: n - canary, 2: canary}
    metrics = await scrape(http, gw)
    for track, count in (("stable", n - canary), ("canary", canary)):
        labels = (("track", track), ("version_label", track))
        assert metrics[("gateway_model_requests_total", labels)] == count
        assert metrics[("gateway_model_duration_seconds_count", labels)] == count
        assert metrics[("gateway_model_served_version", labels)] == LABELS[track]
        errors = tuple(sorted((*labels, ("reason", "model_error"))))
        assert metrics[("gateway_model_errors_total", errors)] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(("percent", "label"), [(0, "stable"), (100, "canary")])
async def test_rollback_and_promotion_send_none_or_all(
    gateway_factory: Factory,
    two_versions: FakeTFServing,
    http: aiohttp.ClientSession,
    percent: int,
    label: str,
) -> None:
    gw = await gateway_factory(**CANARY, canary_percent=percent)
    models = await send(http, gw, 200)
    assert Counter(m["label"] for m in models) == {label: 200}
    assert two_versions.calls_by_version == {LABELS[label]: 200}


@pytest.mark.asyncio
async def test_without_a_canary_the_request_names_no_version(
    gateway_factory: Factory, two_versions: FakeTFServing, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(image_size=8)
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 200, body
    assert (body["model"]["label"], body["model"]["version"]) == (None, 2)  # the latest
    assert two_versions.last_request is not None
    assert two_versions.last_request.model_spec.WhichOneof("version_choice") is None


@pytest.mark.asyncio
async def test_a_label_tf_serving_does_not_know_is_a_502_counted_on_its_track(
    gateway_factory: Factory, two_versions: FakeTFServing, http: aiohttp.ClientSession
) -> None:
    gw = await gateway_factory(image_size=8, canary_label="next", canary_percent=100)
    status, body = await post_image(http, gw, RED_PNG)
    assert status == 502 and "Unrecognized servable version label: next" in body["error"]
    labels = (("reason", "model_error"), ("track", "canary"), ("version_label", "next"))
    assert (await scrape(http, gw))[("gateway_model_errors_total", labels)] == 1
