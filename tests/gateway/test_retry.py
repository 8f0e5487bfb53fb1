"""The channel's retry policy: a Predict that fails with UNAVAILABLE (or CANCELLED by a stopping
server) is retried once, on another replica, within the call's one deadline; nothing else is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio

from gateway.errors import ModelError, ModelUnavailableError, UpstreamTimeoutError
from gateway.tfserving import PREDICT_METHOD, TFServingClient, channel_options
from tools.fake_tfserving import FakeTFServing

# The model's real input, 1 MB serialised: more than gRPC's default per-call retry buffer.
FULL = np.zeros((1, 299, 299, 3), dtype=np.float32)
SMALL = np.zeros((1, 8, 8, 3), dtype=np.float32)


def client(target: str, deadline: float = 2.0) -> TFServingClient:
    return TFServingClient(
        target,
        model_name="clothing-model",
        signature_name="serving_default",
        input_name="input_8",
        output_name="dense_7",
        deadline_seconds=deadline,
    )


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[FakeTFServing, FakeTFServing, TFServingClient]]:
    """Two replicas behind one client, both connected (round_robin has both READY)."""
    a, b = FakeTFServing(), FakeTFServing()
    await a.start()
    await b.start()
    both = client(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}")
    async with asyncio.timeout(5):
        while not (a.predict_calls and b.predict_calls):
            await both.predict(SMALL)
    a.predict_calls = b.predict_calls = 0
    yield a, b, both
    await both.close()
    await a.stop()
    await b.stop()


def test_the_policy_is_set_on_the_predict_method_the_client_calls() -> None:
    options = dict(channel_options())
    config = json.loads(str(options["grpc.service_config"]))
    (method,) = config["methodConfig"]
    (name,) = method["name"]
    assert f"/{name['service']}/{name['method']}" == PREDICT_METHOD
    assert method["retryPolicy"]["maxAttempts"] == 2
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE", "CANCELLED"]
    assert options["grpc.lb_policy_name"] == "round_robin"
    assert int(str(options["grpc.per_rpc_retry_buffer_size"])) > FULL.nbytes


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
async def test_a_failed_call_is_retried_once_on_the_other_replica(
    pair: tuple[FakeTFServing, FakeTFServing, TFServingClient], code: grpc.StatusCode
) -> None:
    a, b, both = pair
    a.behaviour.fail = code
    for _ in range(20):
        assert (await both.predict(FULL)).scores.shape == (10,)
    assert a.predict_calls >= 5  # round_robin kept sending first attempts there...
    assert b.retried_calls == a.predict_calls  # ...and each came back on b as a retry
    assert b.predict_calls == 20


@pytest.mark.asyncio
async def test_a_second_failure_is_the_answer(
    pair: tuple[FakeTFServing, FakeTFServing, TFServingClient],
) -> None:
    a, b, both = pair
    a.behaviour.fail = b.behaviour.fail = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ModelUnavailableError):
        await both.predict(FULL)
    assert a.predict_calls + b.predict_calls == 2  # one retry, not more
    assert a.retried_calls + b.retried_calls == 1


@pytest.mark.asyncio
async def test_other_codes_are_not_retried(
    pair: tuple[FakeTFServing, FakeTFServing, TFServingClient],
) -> None:
    a, b, both = pair
    a.behaviour.fail = b.behaviour.fail = grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ModelError):
        await both.predict(SMALL)
    assert a.predict_calls + b.predict_calls == 1


@pytest.mark.asyncio
async def test_one_deadline_covers_both_attempts(fake_tfs: FakeTFServing) -> None:
    fake_tfs.behaviour.fail = grpc.StatusCode.UNAVAILABLE
    fake_tfs.behaviour.latency_s = 0.3  # two attempts take 0.6 s, the deadline is 0.5
    one = client(f"127.0.0.1:{fake_tfs.port}", deadline=0.5)
    start = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeoutError):
            await one.predict(SMALL)
    finally:
        await one.close()
    assert time.monotonic() - start < 0.5 + 0.2
    assert fake_tfs.predict_calls == 2


@pytest.mark.asyncio
async def test_a_call_the_gateway_cancels_is_not_retried(fake_tfs: FakeTFServing) -> None:
    fake_tfs.behaviour.hold = asyncio.Event()
    one = client(f"127.0.0.1:{fake_tfs.port}")
    try:
        call = asyncio.create_task(one.predict(SMALL))
        async with asyncio.timeout(2):
            while fake_tfs.predict_calls == 0:
                await asyncio.sleep(0.005)
        call.cancel()  # what handler cancellation does when the HTTP client leaves
        with contextlib.suppress(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.2)
        assert fake_tfs.predict_calls == 1
    finally:
        await one.close()
