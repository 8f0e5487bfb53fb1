"""The gRPC client against fake TF Serving servers (real grpc.aio servers on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio

from gateway.errors import ModelError, ModelUnavailableError, UpstreamTimeoutError
from gateway.proto import predict_pb2, tensor_pb2, types_pb2
from gateway.tfserving import CachedReadiness, TFServingClient, tensor_proto, tensor_values
from tools.fake_tfserving import Behaviour, FakeTFServing, State, fake_logits

pytestmark = pytest.mark.asyncio

MakeClient = Callable[..., TFServingClient]


@pytest_asyncio.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TFServingClient] = []

    def make(target: str, **kwargs: Any) -> TFServingClient:
        options: dict[str, Any] = {
            "model_name": "clothing-model",
            "signature_name": "serving_default",
            "input_name": "input_8",
            "output_name": "dense_7",
            "deadline_seconds": 2.0,
        }
        options.update(kwargs)
        client = TFServingClient(target, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def batch(seed: int = 0, size: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)


async def test_tensor_goes_as_raw_bytes() -> None:
    x = batch()
    proto = tensor_proto(x)
    assert proto.dtype == types_pb2.DT_FLOAT
    assert [d.size for d in proto.tensor_shape.dim] == [1, 8, 8, 3]
    assert proto.tensor_content == x.tobytes()
    assert len(proto.float_val) == 0


@pytest.mark.parametrize("shape", [(1, 2, 2, 3), (1, 299, 299, 3), (3, 5, 7, 3), (1, 200, 1)])
@pytest.mark.parametrize("version", [None, 7])
async def test_encoded_request_is_byte_identical_to_protobuf(
    shape: tuple[int, ...], version: int | None, make_client: MakeClient
) -> None:
    client = make_client("127.0.0.1:1", model_version=version, input_name="x" * 200)
    x = np.random.default_rng(2).random(shape, dtype=np.float32)
    encoded = client.encode_request(x)
    assert encoded == client.build_request(x).SerializeToString()
    parsed = predict_pb2.PredictRequest.FromString(encoded)
    assert parsed.inputs["x" * 200].tensor_content == x.tobytes()
    assert list(parsed.output_filter) == ["dense_7"]


async def test_reads_tensor_content_float_val_and_broadcast() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(tensor_values(tensor_proto(x)), x)
    listed = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=x.ravel().tolist())
    listed.tensor_shape.dim.add(size=2)
    listed.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(tensor_values(listed), x)
    single = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, double_val=[0.5])
    single.tensor_shape.dim.add(size=4)
    np.testing.assert_array_equal(tensor_values(single), [0.5] * 4)
    with pytest.raises(ModelError):
        tensor_values(tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING))


@pytest.mark.parametrize("tensor_content", [False, True], ids=["float_val", "tensor_content"])
async def test_predict_round_trip(
    tensor_content: bool, fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.tensor_content = tensor_content
    x = batch(1)
    prediction = await make_client(f"127.0.0.1:{fake_tfs.port}").predict(x)
    assert fake_tfs.last_input is not None
    np.testing.assert_array_equal(fake_tfs.last_input, x)  # the exact tensor arrived
    np.testing.assert_allclose(prediction.scores, fake_logits(x, 10)[0], rtol=1e-6)
    assert (prediction.model_name, prediction.model_version) == ("clothing-model", 1)
    assert prediction.signature_name == "serving_default"
    request = fake_tfs.last_request
    assert request is not None
    assert request.model_spec.signature_name == "serving_default"
    assert list(request.output_filter) == ["dense_7"]
    assert request.inputs["input_8"].tensor_content and not request.inputs["input_8"].float_val


async def test_model_version_is_sent_when_pinned(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.versions = (6, 7, 8)
    prediction = await make_client(f"127.0.0.1:{fake_tfs.port}", model_version=7).predict(batch())
    assert fake_tfs.last_request is not None
    assert fake_tfs.last_request.model_spec.version.value == 7
    assert prediction.model_version == 7  # the version that served it, as TF Serving says


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.UNAVAILABLE, ModelUnavailableError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ModelUnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, UpstreamTimeoutError),
        (grpc.StatusCode.INVALID_ARGUMENT, ModelError),
        (grpc.StatusCode.INTERNAL, ModelError),
    ],
)
async def test_rpc_errors_map_to_gateway_errors(
    code: grpc.StatusCode, error: type[Exception], fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.fail = code
    with pytest.raises(error):
        await make_client(f"127.0.0.1:{fake_tfs.port}").predict(batch())


async def test_deadline_is_enforced_per_call(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.latency_s = 2.0
    client = make_client(f"127.0.0.1:{fake_tfs.port}", deadline_seconds=0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(UpstreamTimeoutError):
        await client.predict(batch())
    assert loop.time() - start < 1.5


async def test_server_down_is_unavailable_fast(make_client: MakeClient) -> None:
    fake = FakeTFServing()
    port = await fake.start()
    await fake.stop()  # nothing listens there now
    with pytest.raises(ModelUnavailableError):
        await make_client(f"127.0.0.1:{port}", deadline_seconds=5).predict(batch())


async def test_wrong_output_name_is_a_model_error(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    with pytest.raises(ModelError, match="dense_7"):
        await make_client(f"127.0.0.1:{fake_tfs.port}", output_name="probs").predict(batch())


@pytest.mark.parametrize(
    ("state", "ready"),
    [(State.AVAILABLE, True), (State.LOADING, False), (State.END, False)],
)
async def test_model_status(
    state: int, ready: bool, fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.state = state  # type: ignore[assignment]
    status = await make_client(f"127.0.0.1:{fake_tfs.port}").model_status(1.0)
    assert status.ready is ready
    assert status.versions == ((1,) if ready else ())


async def test_model_status_of_unknown_model(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    status = await make_client(f"127.0.0.1:{fake_tfs.port}", model_name="other").model_status(1)
    assert not status.ready and "NOT_FOUND" in status.detail


async def test_readiness_is_cached_and_shared(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    readiness = CachedReadiness(make_client(f"127.0.0.1:{fake_tfs.port}"), ttl=60, timeout=1)
    results = await asyncio.gather(*(readiness.get() for _ in range(10)))
    assert all(r.ready for r in results)
    assert fake_tfs.status_calls == 1  # ten concurrent probes, one RPC
    fake_tfs.behaviour.state = State.UNLOADING
    assert (await readiness.get()).ready  # still cached
    assert fake_tfs.status_calls == 1
    uncached = CachedReadiness(make_client(f"127.0.0.1:{fake_tfs.port}"), ttl=0, timeout=1)
    assert not (await uncached.get()).ready
    assert fake_tfs.status_calls == 2


async def _two_fakes() -> tuple[FakeTFServing, FakeTFServing]:
    a, b = FakeTFServing(Behaviour()), FakeTFServing(Behaviour())
    await a.start()
    await b.start()
    return a, b


async def test_round_robin_spreads_calls_over_every_backend(make_client: MakeClient) -> None:
    a, b = await _two_fakes()
    try:
        client = make_client(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}")
        for i in range(40):
            await client.predict(batch(i))
        assert a.predict_calls + b.predict_calls == 40
        assert a.predict_calls >= 15 and b.predict_calls >= 15, (a.predict_calls, b.predict_calls)
    finally:
        await a.stop()
        await b.stop()


async def test_pick_first_would_pin_one_backend(make_client: MakeClient) -> None:
    """The problem round_robin solves (and proof the test above can tell the difference)."""
    a, b = await _two_fakes()
    try:
        client = make_client(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}", lb_policy="pick_first")
        for i in range(20):
            await client.predict(batch(i))
        assert sorted([a.predict_calls, b.predict_calls]) == [0, 20]
    finally:
        await a.stop()
        await b.stop()


async def test_dns_target(fake_tfs: FakeTFServing, make_client: MakeClient) -> None:
    client = make_client(f"dns:///localhost:{fake_tfs.port}")
    prediction = await client.predict(batch())
    assert prediction.scores.shape == (10,)


def _output(dtype: Any, dims: list[int], **values: Any) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


@pytest.mark.parametrize(
    ("proto", "match"),
    [
        (_output(types_pb2.DT_FLOAT, [-1, 10], float_val=[0.0] * 10), "negative dimension"),
        (_output(types_pb2.DT_FLOAT, [1, 1 << 40], float_val=[0.5]), "more than"),
        (_output(types_pb2.DT_FLOAT, [1, 10], tensor_content=b"\x00" * 7), "whole number"),
        (_output(types_pb2.DT_FLOAT, [1, 10], float_val=[0.0] * 9), "9 values"),
        (_output(types_pb2.DT_INT32, [1, 10]), "unsupported dtype"),
    ],
    ids=["negative-dim", "huge-broadcast", "ragged-bytes", "short", "int32"],
)
async def test_inconsistent_outputs_are_model_errors(
    proto: tensor_pb2.TensorProto, match: str
) -> None:
    with pytest.raises(ModelError, match=match):
        tensor_values(proto)


async def test_a_non_finite_answer_is_a_model_error_naming_the_output(
    fake_tfs: FakeTFServing, make_client: MakeClient
) -> None:
    fake_tfs.behaviour.scores = [float("nan")] + [0.0] * 9
    with pytest.raises(ModelError, match="'dense_7' has NaN or infinite values"):
        await make_client(f"127.0.0.1:{fake_tfs.port}").predict(batch())
