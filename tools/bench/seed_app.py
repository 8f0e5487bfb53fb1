"""The course's gateway, as the course has it, to measure against (run under gunicorn):

    gunicorn --workers 1 tools.bench.seed_app:app                 # the seed: one sync worker
    gunicorn --workers 2 --threads 16 -k gthread tools.bench.seed_app:app   # the same, tuned

POST {"url": ...}: urlopen (no timeout, no size cap), full decode, convert to RGB, NEAREST
resize to 299, x/127.5 - 1, a TensorProto with tensor_content, a plain gRPC stub on one
channel, float_val read back into a {label: score} dict. Written for the benchmark from the
course's description; the gateway's own proto modules stand in for tensorflow-protobuf (same
messages on the wire).
"""

from __future__ import annotations

import os
from io import BytesIO
from typing import Any
from urllib import request as urlrequest

import grpc
import numpy as np
from flask import Flask, jsonify
from flask import request as flask_request
from PIL import Image

from gateway.proto import predict_pb2, prediction_service_pb2_grpc, tensor_pb2, types_pb2

HOST = os.getenv("TF_SERVING_HOST", "localhost:8500")
CLASSES = [
    "dress", "hat", "longsleeve", "outwear", "pants",
    "shirt", "shoes", "shorts", "skirt", "t-shirt",
]  # fmt: skip

channel = grpc.insecure_channel(HOST)
stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)


def preprocess_from_url(url: str) -> np.ndarray:
    """keras_image_helper's xception preprocessor: download, then preprocess."""
    with urlrequest.urlopen(url) as resp:  # the course has no timeout and no size cap
        return preprocess(resp.read())


def preprocess(buffer: bytes) -> np.ndarray:
    """Full decode, RGB, NEAREST to 299, x/127.5 - 1: the seed's bare preprocessing (the
    benchmark's floor)."""
    img: Image.Image = Image.open(BytesIO(buffer))
    if img.mode != "RGB":
        img = img.convert("RGB")
    img = img.resize((299, 299), Image.Resampling.NEAREST)
    x = np.array(img, dtype="float32")
    batch = np.array([x])
    batch /= 127.5
    batch -= 1.0
    return batch


def np_to_protobuf(data: np.ndarray) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=data.tobytes())
    for size in data.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def prepare_request(batch: np.ndarray) -> predict_pb2.PredictRequest:
    pb_request = predict_pb2.PredictRequest()
    pb_request.model_spec.name = "clothing-model"
    pb_request.model_spec.signature_name = "serving_default"
    pb_request.inputs["input_8"].CopyFrom(np_to_protobuf(batch))
    return pb_request


def prepare_response(pb_response: predict_pb2.PredictResponse) -> dict[str, float]:
    preds = pb_response.outputs["dense_7"].float_val
    return dict(zip(CLASSES, preds, strict=False))


def predict(url: str) -> dict[str, float]:
    batch = preprocess_from_url(url)
    pb_response = stub.Predict(prepare_request(batch), timeout=20.0)
    return prepare_response(pb_response)


app = Flask("gateway")


@app.route("/predict", methods=["POST"])
def predict_endpoint() -> Any:
    data = flask_request.get_json()
    return jsonify(predict(data["url"]))
