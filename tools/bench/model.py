"""The benchmark's stand-in for TF Serving: a fixed service time, and as little CPU as possible.

    venv/bin/python -m tools.bench.model --latency-ms 20      # prints its port

It is tools/fake_tfserving.py's server (the same messages, model name, signature, input and
output) with a lighter Predict: the request is checked (model, signature, input name, DT_FLOAT,
a tensor_content of exactly the declared shape) but not computed on, and every answer carries
the same scores as float_val, as real TF Serving answers by default. The full fake spends ~2 ms
of CPU per 1 MB request on arithmetic; on a shared 2-core machine that CPU would come out of
the servers being measured. Real TF Serving runs on other nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import math

import grpc
from typing_extensions import override

from gateway.proto import predict_pb2, types_pb2
from tools.fake_tfserving import Behaviour, FakeTFServing

SCORES = [0.5, -1.25, 2.0, 0.125, -0.5, 1.5, -2.0, 0.25, 1.0, -0.75]


class BenchModel(FakeTFServing):
    """Checks each request and answers fixed scores after a fixed service time."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        super().__init__(behaviour)
        b = self.behaviour
        response = predict_pb2.PredictResponse()
        response.model_spec.name = b.model_name
        response.model_spec.version.value = b.version
        response.model_spec.signature_name = b.signature_name
        out = response.outputs[b.output_name]
        out.dtype = types_pb2.DT_FLOAT
        out.tensor_shape.dim.add(size=1)
        out.tensor_shape.dim.add(size=len(SCORES))
        out.float_val.extend(SCORES)
        self._response = response

    @override
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        b = self.behaviour
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.predict_calls += 1
        problem = _problem(request, b)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        await asyncio.sleep(max(0.0, b.latency_s - (loop.time() - start)))
        return self._response


def _problem(request: predict_pb2.PredictRequest, b: Behaviour) -> str:
    spec = request.model_spec
    if spec.name != b.model_name:
        return f"Servable not found for request: Latest({spec.name})"
    if spec.signature_name not in ("", b.signature_name):
        return f"Serving signature name: {spec.signature_name!r} not found"
    if b.input_name not in request.inputs:
        return f"input {b.input_name!r} missing"
    tensor = request.inputs[b.input_name]
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.dtype != types_pb2.DT_FLOAT or len(shape) != 4 or shape[-1] != 3:
        return "expected DT_FLOAT [N,H,W,3]"
    count = math.prod(shape)
    if len(tensor.tensor_content) != 4 * count and len(tensor.float_val) != count:
        return f"tensor does not hold {count} float values"
    return ""


async def _serve(args: argparse.Namespace) -> None:
    model = BenchModel(Behaviour(latency_s=args.latency_ms / 1000))
    port = await model.start(args.host, args.port)
    print(port, flush=True)  # the benchmark reads the bound port from here
    await model.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's fake TF Serving")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
