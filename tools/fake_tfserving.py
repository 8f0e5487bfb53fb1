"""A fake TF Serving (PredictionService.Predict + ModelService.GetModelStatus over gRPC) for
tests, the benchmark and local runs without TensorFlow:

    venv/bin/python -m tools.fake_tfserving --port 8500 --latency-ms 20
    venv/bin/python -m tools.fake_tfserving --versions 3,4 --label stable=3 --label canary=4

Its "model" is real arithmetic on the input tensor: class i scores the mean of channel i % 3
times (i // 3 + 1), so a caller can tell what tensor arrived (values, channel order, scaling).
It serves one or more versions, with version labels as TF Serving's model config has them, and
answers with the version that served the call. On SIGTERM it stops gracefully (no new calls,
GOAWAY, the calls it holds finish within --grace-seconds), as a gRPC server that drains would.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import signal
from dataclasses import dataclass, field

import grpc
import numpy as np
from typing_extensions import override

from gateway.proto import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
    tensor_pb2,
    types_pb2,
)
from gateway.tfserving import tensor_proto

State = get_model_status_pb2.ModelVersionStatus.State


def fake_logits(batch: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, H, W, 3) -> (N, num_classes) float32."""
    pixels = batch.reshape(batch.shape[0], -1, batch.shape[-1])
    channel_means = pixels.mean(axis=1, dtype=np.float64)  # float32 sums drift on big images
    index = np.arange(num_classes)
    return (channel_means[:, index % 3] * (index // 3 + 1)).astype(np.float32)


@dataclass
class Behaviour:
    """What the fake does; tests change fields between calls."""

    model_name: str = "clothing-model"
    version: int = 1
    signature_name: str = "serving_default"
    input_name: str = "input_8"
    output_name: str = "dense_7"
    num_classes: int = 10
    latency_s: float = 0.0
    fail: grpc.StatusCode | None = None  # abort Predict with this code
    status_fail: grpc.StatusCode | None = None  # abort GetModelStatus with this code
    state: State.ValueType = State.AVAILABLE
    tensor_content: bool = False  # real TF Serving answers with float_val unless told
    hold: asyncio.Event | None = None  # Predict waits for it: tests keep requests in flight
    scores: list[float] | None = None  # answer these scores (NaN, Inf...) instead of the model's
    versions: tuple[int, ...] = ()  # the versions loaded; empty: just `version`
    labels: dict[str, int] = field(default_factory=dict)  # version labels, as TF Serving's

    def loaded(self) -> tuple[int, ...]:
        return self.versions or (self.version,)


class FakeTFServing(
    prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service_pb2_grpc.ModelServiceServicer,
):
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.predict_calls = 0
        self.calls_by_version: collections.Counter[int] = collections.Counter()
        self.retried_calls = 0  # calls that gRPC marked as a retry (grpc-previous-rpc-attempts)
        self.status_calls = 0
        self.last_input: np.ndarray | None = None
        self.last_request: predict_pb2.PredictRequest | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        await self._server.start()
        return self.port

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self, grace: float | None = None) -> None:
        """grace None: at once (calls in flight fail); else the calls held get that long."""
        if self._server is not None:
            await self._server.stop(grace=grace)

    @override
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        b = self.behaviour
        start = asyncio.get_running_loop().time()
        self.predict_calls += 1
        self.last_request = request
        metadata = dict(context.invocation_metadata() or ())
        if "grpc-previous-rpc-attempts" in metadata:
            self.retried_calls += 1
        if b.hold is not None:
            await b.hold.wait()
        if b.fail is not None:
            await asyncio.sleep(b.latency_s)
            await context.abort(b.fail, f"injected {b.fail.name}")
        spec = request.model_spec
        if spec.name != b.model_name or b.state != State.AVAILABLE:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})"
            )
        version = await self._version(spec, context)
        if spec.signature_name not in ("", b.signature_name):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Serving signature name: {spec.signature_name!r} not found",
            )
        if b.input_name not in request.inputs:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {b.input_name!r} missing")
        batch = self._decode(request.inputs[b.input_name])
        if batch is None or batch.ndim != 4 or batch.shape[-1] != 3:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected DT_FLOAT [N,H,W,3]")
        assert batch is not None
        self.last_input = batch
        logits = fake_logits(batch, b.num_classes)
        if b.scores is not None:
            logits = np.array([b.scores], dtype=np.float32)
        out = tensor_proto(logits)
        # A fixed service time: the arithmetic above counts towards it.
        await asyncio.sleep(max(0.0, b.latency_s - (asyncio.get_running_loop().time() - start)))
        if not b.tensor_content:
            out.float_val.extend(np.frombuffer(out.tensor_content, dtype="<f4").tolist())
            out.ClearField("tensor_content")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = b.model_name
        response.model_spec.version.value = version
        self.calls_by_version[version] += 1
        response.model_spec.signature_name = spec.signature_name or b.signature_name
        response.outputs[b.output_name].CopyFrom(out)
        return response

    async def _version(self, spec: model_pb2.ModelSpec, context: grpc.aio.ServicerContext) -> int:
        """The version a ModelSpec asks for, with TF Serving's errors."""
        b = self.behaviour
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if spec.version_label not in b.labels:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {spec.version_label}",
                )
            return b.labels[spec.version_label]
        if choice == "version":
            if spec.version.value not in b.loaded():
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({spec.name}, {spec.version.value})",
                )
            return spec.version.value
        return max(b.loaded())

    @staticmethod
    def _decode(t: tensor_pb2.TensorProto) -> np.ndarray | None:
        if t.dtype != types_pb2.DT_FLOAT:
            return None
        shape = tuple(d.size for d in t.tensor_shape.dim)
        if t.tensor_content:
            values = np.frombuffer(t.tensor_content, dtype="<f4")
        else:
            values = np.asarray(t.float_val, dtype=np.float32)
        if values.size != int(np.prod(shape)):
            return None
        return values.reshape(shape)

    @override
    async def GetModelStatus(
        self,
        request: get_model_status_pb2.GetModelStatusRequest,
        context: grpc.aio.ServicerContext,
    ) -> get_model_status_pb2.GetModelStatusResponse:
        b = self.behaviour
        self.status_calls += 1
        if b.status_fail is not None:
            await context.abort(b.status_fail, f"injected {b.status_fail.name}")
        if request.model_spec.name != b.model_name:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find any versions of model {request.model_spec.name}",
            )
        return get_model_status_pb2.GetModelStatusResponse(
            model_version_status=[
                get_model_status_pb2.ModelVersionStatus(
                    version=version, state=b.state, status=status_pb2.StatusProto()
                )
                for version in b.loaded()
            ]
        )


def _label(text: str) -> tuple[str, int]:
    name, _, version = text.partition("=")
    return name, int(version)


async def _serve(args: argparse.Namespace) -> None:
    versions = tuple(int(v) for v in args.versions.split(",")) if args.versions else ()
    fake = FakeTFServing(
        Behaviour(
            latency_s=args.latency_ms / 1000,
            tensor_content=args.tensor_content,
            versions=versions,
            labels=dict(args.label),
        )
    )
    port = await fake.start(args.host, args.port)
    logging.info("fake TF Serving on %s:%d", args.host, port)
    print(port, flush=True)  # the benchmark reads the bound port from here
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    waiting = asyncio.ensure_future(fake.wait())
    await asyncio.wait(
        [waiting, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if stopping.is_set():
        await fake.stop(grace=args.grace_seconds)
    waiting.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description="fake TF Serving gRPC server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--tensor-content", action="store_true", help="reply with raw bytes")
    parser.add_argument("--versions", default="", help="versions loaded, e.g. 3,4 (default 1)")
    parser.add_argument(
        "--label", type=_label, action="append", default=[], help="a version label: NAME=VERSION"
    )
    parser.add_argument(
        "--grace-seconds", type=float, default=5.0, help="on SIGTERM, for the calls in flight"
    )
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
