"""Our minimal protos must stay wire-compatible with TF Serving's, and the committed generated
code must match the .proto files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.proto import (
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    status_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

# Full name -> field -> number, from tensorflow/serving and tensorflow/tensorflow sources.
UPSTREAM_FIELDS = {
    tensor_pb2.TensorProto: {
        "dtype": 1,
        "tensor_shape": 2,
        "version_number": 3,
        "tensor_content": 4,
        "float_val": 5,
        "double_val": 6,
        "int_val": 7,
        "string_val": 8,
        "scomplex_val": 9,
        "int64_val": 10,
        "bool_val": 11,
        "dcomplex_val": 12,
        "half_val": 13,
        "uint32_val": 16,
        "uint64_val": 17,
    },
    tensor_shape_pb2.TensorShapeProto: {"dim": 2, "unknown_rank": 3},
    tensor_shape_pb2.TensorShapeProto.Dim: {"size": 1, "name": 2},
    model_pb2.ModelSpec: {"name": 1, "version": 2, "signature_name": 3, "version_label": 4},
    predict_pb2.PredictRequest: {"model_spec": 1, "inputs": 2, "output_filter": 3},
    predict_pb2.PredictResponse: {"outputs": 1, "model_spec": 2},
    get_model_status_pb2.GetModelStatusRequest: {"model_spec": 1},
    get_model_status_pb2.ModelVersionStatus: {"version": 1, "state": 2, "status": 3},
    get_model_status_pb2.GetModelStatusResponse: {"model_version_status": 1},
    status_pb2.StatusProto: {"error_code": 1, "error_message": 2},
}


@pytest.mark.parametrize("message", list(UPSTREAM_FIELDS), ids=lambda m: m.DESCRIPTOR.full_name)
def test_field_numbers_match_tf_serving(message: type) -> None:
    descriptor = message.DESCRIPTOR  # type: ignore[attr-defined]
    assert {f.name: f.number for f in descriptor.fields} == UPSTREAM_FIELDS[message]


def test_package_and_names_match_tf_serving() -> None:
    assert tensor_pb2.TensorProto.DESCRIPTOR.full_name == "tensorflow.TensorProto"
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"
    predict = prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]
    assert predict.full_name == "tensorflow.serving.PredictionService"
    assert predict.methods_by_name["Predict"].input_type.full_name.endswith("PredictRequest")
    model = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]
    assert model.methods_by_name["GetModelStatus"].full_name == (
        "tensorflow.serving.ModelService.GetModelStatus"
    )


def test_enum_values_match_tensorflow() -> None:
    assert types_pb2.DT_FLOAT == 1 and types_pb2.DT_DOUBLE == 2 and types_pb2.DT_HALF == 19
    state = get_model_status_pb2.ModelVersionStatus.State
    assert [state.Value(n) for n in ("UNKNOWN", "START", "LOADING", "AVAILABLE")] == [0, 10, 20, 30]
    assert [state.Value(n) for n in ("UNLOADING", "END")] == [40, 50]


def test_known_wire_bytes() -> None:
    """A ModelSpec{name:"m", version:3, signature_name:"s"} as TF Serving encodes it."""
    spec = model_pb2.ModelSpec(name="m", signature_name="s")
    spec.version.value = 3
    assert spec.SerializeToString() == b"\x0a\x01m\x12\x02\x08\x03\x1a\x01s"


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("mypy_protobuf")
    generator = pytest.importorskip("gateway.proto.generate")  # needs grpcio-tools (dev)
    fresh = generator.generate(tmp_path)
    assert fresh, "nothing generated"
    proto_dir = generator.PROTO_DIR
    committed = sorted(p.name for p in proto_dir.glob("*_pb2*.py*"))
    assert sorted(p.name for p in fresh) == committed
    for path in fresh:
        stale = (proto_dir / path.name).read_text() != path.read_text()
        assert not stale, f"{path.name} is stale: run python -m gateway.proto.generate"
