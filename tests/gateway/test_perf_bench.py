"""The benchmark's own parts: its lean fake TF Serving checks what it gets, and results add up."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from gateway.errors import ModelError
from gateway.tfserving import TFServingClient
from tools.bench.load import LOAD_GENERATOR, Result, merged
from tools.bench.model import SCORES, BenchModel
from tools.bench.report import Floor, harness
from tools.fake_tfserving import Behaviour


@pytest.mark.asyncio
async def test_the_bench_model_answers_good_requests_and_refuses_bad_ones() -> None:
    model = BenchModel(Behaviour(latency_s=0.0))
    port = await model.start()
    client = TFServingClient(
        f"127.0.0.1:{port}",
        model_name="clothing-model",
        signature_name="serving_default",
        input_name="input_8",
        output_name="dense_7",
        deadline_seconds=5,
    )
    try:
        answer = await client.predict(np.zeros((1, 8, 8, 3), np.float32))
        assert answer.scores.tolist() == pytest.approx(SCORES)
        raw = await _raw_predict(port, client.encode_request(np.zeros((1, 8, 8, 3), np.float32)))
        assert raw is None  # a well-formed request, sent raw, passes too
        short = client.build_request(np.zeros((1, 8, 8, 3), np.float32))
        short.inputs["input_8"].tensor_content = b"\0" * 40  # 10 values for a 192-value shape
        code = await _raw_predict(port, short.SerializeToString())
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(ModelError):  # not [N, H, W, 3]
            await client.predict(np.zeros((1, 8, 8), np.float32))
        assert model.predict_calls == 4
    finally:
        await client.close()
        await model.stop()


async def _raw_predict(port: int, request: bytes) -> grpc.StatusCode | None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        try:
            await call(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return None


def test_rounds_of_one_workload_add_up_to_one_result() -> None:
    one = Result("gateway", "1024x768", 16, 2.0, 0.010, [10.0, 20.0], 1, 0, {"fake": 0.004})
    two = Result("gateway", "1024x768", 16, 3.0, 0.020, [30.0], 0, 2, {"fake": 0.002})
    both = merged([one, two])
    assert (both.seconds, both.answered, both.refused, both.errors) == (5.0, 3, 1, 2)
    assert both.cpu_ms_per_request == pytest.approx(10.0)
    assert both.harness_ms_per_request("fake") == pytest.approx(2.0)
    assert np.isnan(both.harness_ms_per_request("missing"))


def test_the_floor_is_the_mean_of_its_samples_and_the_harness_table_shows_16_clients() -> None:
    floor = Floor({"1024x768": [4.0, 6.0]})
    result = Result(
        "gateway", "1024x768", 16, 1.0, 0.5, [1.0] * 100, 0, 0,
        {"fake": 0.2, "images": 0.03, LOAD_GENERATOR: 0.05},
    )  # fmt: skip
    assert floor.by_image == {"1024x768": 5.0}
    assert floor.ratio(result) == pytest.approx(1.0)  # 5 ms per request over a 5 ms floor
    table = harness([result, merged([result])], "fake", "images").splitlines()
    assert len(table) == 4 and "2.00" in table[2] and "0.30" in table[2] and "0.50" in table[2]
