"""TF Serving client over gRPC (grpc.aio): one channel per process, round_robin over every
address the target resolves to (use dns:///<headless-svc>:8500 in Kubernetes), and a Predict
that fails with UNAVAILABLE (or CANCELLED by a stopping server) retried once, on another replica,
within the same deadline."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from gateway.errors import ModelError, ModelUnavailableError, UpstreamTimeoutError
from gateway.proto import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# A class-score vector; anything far larger is not the answer this gateway can use.
MAX_OUTPUT_VALUES = 1_000_000
_DTYPES: dict[int, np.dtype[Any]] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
}
_PREDICT = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
PREDICT_METHOD = "/{}/{}".format(*_PREDICT.methods_by_name["Predict"].full_name.rsplit(".", 1))
# A replica that goes away (rollout, scale-down: TF Serving does not drain, tensorflow/serving
# #1853) fails the calls it holds with UNAVAILABLE. A gRPC server that stops gracefully cancels
# instead the calls that reached it but no handler yet (grpc core server.cc: ShutdownAndNotify,
# KillPendingWorkLocked "Server Shutdown"): the client sees CANCELLED, which
# tests/gateway/test_rollout.py meets under load. Predict has no side effect, so both codes are
# retried, once; a call the gateway cancels itself (its client left) is not (a test checks it).
# How gRPC retries (gRFC A6, github.com/grpc/proposal/blob/master/A6-client-retries.md):
# - retries sit between the channel and the LB policy, so round_robin picks the retry's
#   subchannel afresh and skips the one that left READY: another replica;
# - the call's deadline (GATEWAY_MODEL_DEADLINE_SECONDS) covers every attempt;
# - only an uncommitted call is retried: no response headers yet, and the whole request in the
#   retry buffer (grpc.per_rpc_retry_buffer_size, 256 KiB by default in grpc core's
#   retry_filter.h, less than one 299x299 float32 request: raised below);
# - retryThrottling stops retries while more than maxTokens/2 calls (net of tokenRatio per
#   success) failed, so a TF Serving that is down or overloaded (its batch queue answers
#   UNAVAILABLE when full) is not sent twice the load;
# - grpc.enable_retries defaults to on in grpc core (client_channel_filter.cc), set anyway.
PREDICT_RETRY_POLICY = {
    "maxAttempts": 2,
    "initialBackoff": "0.01s",
    "maxBackoff": "0.05s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
}
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": _PREDICT.full_name, "method": "Predict"}],
            "retryPolicy": PREDICT_RETRY_POLICY,
        }
    ],
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
}


def channel_options(lb_policy: str = "round_robin") -> list[tuple[str, object]]:
    return [
        # Spread calls over every resolved backend instead of pinning one connection.
        ("grpc.lb_policy_name", lb_policy),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        # Ours, not one a DNS TXT record could replace.
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.enable_retries", 1),
        # Every request fits, so every request can be retried (held until TF Serving answers).
        ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES),
        # Notice dead backends on idle connections; TF Serving's default permits 10 s+ pings.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.primary_user_agent", "tfserving-gateway"),
    ]


def tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """float32 array -> TensorProto with raw tensor_content bytes (no per-element encoding)."""
    if array.dtype != np.float32:
        raise TypeError(f"expected float32, got {array.dtype}")
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in array.shape]
    )
    contiguous = np.ascontiguousarray(array, dtype="<f4")
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape, tensor_content=contiguous.tobytes()
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(field_number: int, length: int) -> bytes:
    """Tag and length of a length-delimited protobuf field (wire type 2)."""
    return _varint(field_number << 3 | 2) + _varint(length)


class RequestEncoder:
    """Serialises a one-input PredictRequest with a single copy of the tensor bytes.

    Building a TensorProto, copying it into the request map and serialising would copy the
    ~1 MB tensor three times. Protobuf's wire format is a concatenation of fields, so the
    small parts are serialised by protobuf and the tensor bytes are framed around them. The
    output is byte-identical to PredictRequest.SerializeToString() (a test checks it).
    """

    def __init__(self, model_spec: model_pb2.ModelSpec, input_name: str, output_name: str):
        self._head = predict_pb2.PredictRequest(model_spec=model_spec).SerializeToString()
        self._tail = predict_pb2.PredictRequest(output_filter=[output_name]).SerializeToString()
        name = input_name.encode()
        self._key = _delimited(1, len(name)) + name  # map entry field 1: key

    def encode(self, array: np.ndarray) -> bytes:
        data = np.ascontiguousarray(array, dtype="<f4")
        shape = tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in data.shape]
        )
        meta = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape)
        meta_bytes = meta.SerializeToString()  # fields 1-2; tensor_content (4) follows
        content = _delimited(4, data.nbytes)
        tensor_len = len(meta_bytes) + len(content) + data.nbytes
        value = _delimited(2, tensor_len)  # map entry field 2: the TensorProto
        entry = _delimited(2, len(self._key) + len(value) + tensor_len)  # request field 2
        body = data.data.cast("B")  # the array's own buffer, not a copy
        return b"".join(
            (self._head, entry, self._key, value, meta_bytes, content, body, self._tail)
        )


def tensor_values(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """TensorProto -> numpy, from tensor_content or float_val/double_val (TF Serving's default).

    The answer comes from another process: every inconsistency is a ModelError (502).
    """
    dtype = _DTYPES.get(proto.dtype)
    if dtype is None:
        raise ModelError(f"model output has unsupported dtype {proto.dtype}")
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise ModelError(f"model output has an unknown or negative dimension {list(shape)}")
    count = math.prod(shape) if shape else None
    if count is not None and count > MAX_OUTPUT_VALUES:
        raise ModelError(f"model output has {count} values, more than {MAX_OUTPUT_VALUES}")
    if proto.tensor_content:
        if len(proto.tensor_content) % dtype.itemsize:
            raise ModelError("model output tensor_content is not a whole number of values")
        values = np.frombuffer(proto.tensor_content, dtype=dtype)
    elif proto.dtype == types_pb2.DT_FLOAT:
        values = np.fromiter(proto.float_val, dtype=np.float32, count=len(proto.float_val))
    else:
        values = np.fromiter(proto.double_val, dtype=np.float64, count=len(proto.double_val))
    count = values.size if count is None else count
    if values.size == 1 and count > 1:  # a single value fills the shape (TensorProto rule)
        values = np.full(count, values[0], dtype=values.dtype)
    if values.size != count:
        raise ModelError(f"model output has {values.size} values for shape {list(shape)}")
    return values.reshape(shape) if shape else values


@dataclass(frozen=True)
class Prediction:
    scores: np.ndarray  # 1-D, one score per class
    model_name: str
    model_version: int | None
    signature_name: str


@dataclass(frozen=True)
class ModelStatus:
    ready: bool
    detail: str
    versions: tuple[int, ...] = ()


def _map_rpc_error(exc: grpc.aio.AioRpcError, what: str) -> Exception:
    code = exc.code()
    text = f"{what}: {code.name} {exc.details() or ''}".strip()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return UpstreamTimeoutError(f"{what}: model deadline exceeded")
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.NOT_FOUND,  # model not (yet) loaded
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    ):
        return ModelUnavailableError(text)
    return ModelError(text)


class TFServingClient:
    """Create inside the running event loop (app start-up); close() at shutdown."""

    def __init__(
        self,
        target: str,
        *,
        model_name: str,
        signature_name: str,
        input_name: str,
        output_name: str,
        deadline_seconds: float,
        model_version: int | None = None,
        version_labels: tuple[str, ...] = (),
        lb_policy: str = "round_robin",
    ) -> None:
        self.target = target
        self.model_name = model_name
        self.signature_name = signature_name
        self.input_name = input_name
        self.output_name = output_name
        self.deadline_seconds = deadline_seconds
        self.model_version = model_version
        self._channel = grpc.aio.insecure_channel(target, options=channel_options(lb_policy))
        # Requests arrive already serialised (RequestEncoder), so no request serializer.
        self._predict = self._channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=None,
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        self._status = model_service_pb2_grpc.ModelServiceStub(self._channel).GetModelStatus
        # One encoder per version label the canary may ask for (None: no label).
        self._encoders = {
            label: RequestEncoder(self._model_spec(True, label), input_name, output_name)
            for label in (None, *version_labels)
        }

    def _model_spec(self, signature: bool, label: str | None = None) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=self.model_name)
        if signature:
            spec.signature_name = self.signature_name
        if label is not None:  # version_label and version are one oneof in ModelSpec
            spec.version_label = label
        elif self.model_version is not None:
            spec.version.value = self.model_version
        return spec

    def build_request(self, batch: np.ndarray) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest(
            model_spec=self._model_spec(signature=True), output_filter=[self.output_name]
        )
        request.inputs[self.input_name].CopyFrom(tensor_proto(batch))
        return request

    def encode_request(self, batch: np.ndarray, label: str | None = None) -> bytes:
        """Serialised PredictRequest for a float32 batch, asking for the version `label` (one
        given at construction) or the default one. Thread-safe: run it off the loop."""
        return self._encoders[label].encode(batch)

    async def predict(self, batch: np.ndarray) -> Prediction:
        return await self.predict_encoded(self.encode_request(batch))

    async def predict_encoded(self, request: bytes) -> Prediction:
        try:
            response = await self._predict(request, timeout=self.deadline_seconds)
        except grpc.aio.AioRpcError as exc:
            raise _map_rpc_error(exc, "TF Serving Predict") from None
        if self.output_name not in response.outputs:
            names = ", ".join(sorted(response.outputs)) or "none"
            raise ModelError(f"TF Serving answered without output {self.output_name!r} ({names})")
        scores = tensor_values(response.outputs[self.output_name])
        if scores.ndim == 2 and scores.shape[0] == 1:
            scores = scores[0]
        if scores.ndim != 1:
            raise ModelError(f"model output has shape {list(scores.shape)}, expected [1, classes]")
        if not np.isfinite(scores).all():  # NaN/Inf: no probability, and not even valid JSON
            raise ModelError(f"model output {self.output_name!r} has NaN or infinite values")
        spec = response.model_spec
        return Prediction(
            scores=scores,
            model_name=spec.name or self.model_name,
            model_version=spec.version.value if spec.HasField("version") else None,
            signature_name=spec.signature_name or self.signature_name,
        )

    async def model_status(self, timeout: float) -> ModelStatus:
        request = get_model_status_pb2.GetModelStatusRequest(
            model_spec=self._model_spec(signature=False)
        )
        try:
            response = await self._status(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return ModelStatus(False, f"GetModelStatus failed: {exc.code().name}")
        available = tuple(s.version for s in response.model_version_status if s.state == AVAILABLE)
        if available:
            return ModelStatus(True, "AVAILABLE", available)
        states = [
            f"{s.version}:{get_model_status_pb2.ModelVersionStatus.State.Name(s.state)}"
            for s in response.model_version_status
        ]
        return ModelStatus(False, f"no AVAILABLE version ({', '.join(states) or 'none'})")

    async def close(self) -> None:
        await self._channel.close()


class CachedReadiness:
    """Answers /readyz from a recent GetModelStatus so probes do not hammer TF Serving;
    concurrent probes share one in-flight call."""

    def __init__(self, client: TFServingClient, ttl: float, timeout: float) -> None:
        self._client = client
        self._ttl = ttl
        self._timeout = timeout
        self._value: ModelStatus | None = None
        self._at = 0.0
        self._inflight: asyncio.Future[ModelStatus] | None = None

    async def get(self) -> ModelStatus:
        now = time.monotonic()
        if self._value is not None and now - self._at < self._ttl:
            return self._value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> ModelStatus:
        try:
            value = await self._client.model_status(self._timeout)
            self._value, self._at = value, time.monotonic()
            return value
        finally:
            self._inflight = None
