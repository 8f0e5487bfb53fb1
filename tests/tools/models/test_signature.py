"""The SavedModel signature reader, on the committed demo models and on broken inputs."""

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from config.paths import PROJECT_ROOT
from tools.models.proto import tfserving_savedmodel_pb2 as pb
from tools.models.signature import SavedModelError, main, read_signatures

HALF_PLUS_TWO = PROJECT_ROOT / "models" / "half_plus_two" / "1"
SHAPES = PROJECT_ROOT / "models" / "shapes"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def write_saved_model(path: Path, message: pb.SavedModel) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "saved_model.pb").write_bytes(message.SerializeToString())
    return path


def test_half_plus_two_signature():
    sigs = read_signatures(HALF_PLUS_TWO)
    assert list(sigs) == ["serving_default"]
    sig = sigs["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert list(sig["inputs"]) == ["x"]
    assert list(sig["outputs"]) == ["y"]
    for spec in (sig["inputs"]["x"], sig["outputs"]["y"]):
        assert spec["dtype"] == "DT_FLOAT"
        assert spec["shape"] == [-1]
        assert spec["name"]  # a graph tensor name such as serving_default_x:0


def test_shapes_classifier_signature_matches_labels_and_samples():
    sig = read_signatures(SHAPES / "1")["serving_default"]
    assert list(sig["inputs"]) == ["image"] and list(sig["outputs"]) == ["probabilities"]
    image, probs = sig["inputs"]["image"], sig["outputs"]["probabilities"]
    assert image["dtype"] == probs["dtype"] == "DT_FLOAT"
    assert image["shape"] is not None and probs["shape"] is not None
    batch, height, width, channels = image["shape"]
    assert (batch, channels) == (-1, 3) and height == width > 0

    labels = (SHAPES / "labels.txt").read_text().splitlines()
    assert labels and all(label.strip() == label != "" for label in labels)
    assert probs["shape"] == [-1, len(labels)]

    samples = sorted((SHAPES / "samples").glob("*.png"))
    assert sorted(p.stem for p in samples) == sorted(labels)
    assert all(png_size(p) == (width, height) for p in samples)


def test_committed_models_fit_in_a_configmap():
    # A ConfigMap holds at most 1 MiB; leave room for the other model and overhead.
    for model in (HALF_PLUS_TWO.parent, SHAPES):
        size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
        assert size < 500 * 1024, (model, size)


def test_accepts_the_pb_file_itself():
    assert read_signatures(HALF_PLUS_TWO / "saved_model.pb") == read_signatures(HALF_PLUS_TWO)


def test_internal_signatures_only_on_request():
    assert "__saved_model_init_op" not in read_signatures(HALF_PLUS_TWO)
    assert "__saved_model_init_op" in read_signatures(HALF_PLUS_TWO, include_internal=True)


def test_directory_without_saved_model_pb(tmp_path):
    with pytest.raises(SavedModelError, match=r"no saved_model\.pb in"):
        read_signatures(tmp_path)


def test_model_base_path_hints_at_a_version(tmp_path):
    (tmp_path / "3").mkdir()
    with pytest.raises(SavedModelError, match="pass a version") as info:
        read_signatures(tmp_path)
    assert str(tmp_path / "3") in str(info.value)


def test_missing_path(tmp_path):
    with pytest.raises(SavedModelError, match="does not exist"):
        read_signatures(tmp_path / "nope")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xff\xff\xff",
        b"this is not a protobuf, just some text\n",
    ],
    ids=["empty", "bad-varint", "text"],
)
def test_corrupt_file(tmp_path, content):
    (tmp_path / "saved_model.pb").write_bytes(content)
    with pytest.raises(SavedModelError, match=r"is not a (valid )?SavedModel") as info:
        read_signatures(tmp_path)
    assert str(tmp_path / "saved_model.pb") in str(info.value)


def test_truncated_copy_of_a_real_model(tmp_path):
    data = (HALF_PLUS_TWO / "saved_model.pb").read_bytes()
    (tmp_path / "saved_model.pb").write_bytes(data[: len(data) // 2])
    with pytest.raises(SavedModelError, match="not a valid SavedModel"):
        read_signatures(tmp_path)


def test_meta_graph_chosen_by_tag(tmp_path):
    def meta_graph(tag: str, input_key: str) -> pb.MetaGraphDef:
        graph = pb.MetaGraphDef()
        graph.meta_info_def.tags.append(tag)
        info = graph.signature_def["serving_default"].inputs[input_key]
        info.dtype = pb.DT_INT64
        info.tensor_shape.unknown_rank = True
        return graph

    model = write_saved_model(
        tmp_path, pb.SavedModel(meta_graphs=[meta_graph("train", "a"), meta_graph("serve", "b")])
    )
    assert list(read_signatures(model)["serving_default"]["inputs"]) == ["b"]
    assert read_signatures(model, tag="train")["serving_default"]["inputs"]["a"] == {
        "name": "",
        "dtype": "DT_INT64",
        "shape": None,
    }
    with pytest.raises(SavedModelError, match=r"no meta graph tagged 'gpu'.*\['train'\]"):
        read_signatures(model, tag="gpu")


def test_unknown_dtype_is_reported_by_number(tmp_path):
    graph = pb.MetaGraphDef()
    graph.meta_info_def.tags.append("serve")
    graph.signature_def["s"].outputs["o"].dtype = 999  # type: ignore[assignment]
    model = write_saved_model(tmp_path, pb.SavedModel(meta_graphs=[graph]))
    assert read_signatures(model)["s"]["outputs"]["o"]["dtype"] == "DT_999"


def test_messages_live_in_our_own_package():
    # Generated TF Serving protos elsewhere in the repo own `tensorflow.*` in the descriptor pool.
    assert pb.SavedModel.DESCRIPTOR.full_name == "tfserving_savedmodel.SavedModel"
    assert pb.DESCRIPTOR.name == "proto/tfserving_savedmodel.proto"


def test_cli_json(capsys):
    assert main([str(HALF_PLUS_TWO), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == read_signatures(HALF_PLUS_TWO)


def test_cli_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no saved_model.pb" in capsys.readouterr().err


def test_cli_run_as_documented():
    # As the README has it: a module run from the project root.
    done = subprocess.run(
        [sys.executable, "-m", "tools.models.signature", str(HALF_PLUS_TWO)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "serving_default" in done.stdout
    assert "x: DT_FLOAT [-1]" in done.stdout and "y: DT_FLOAT [-1]" in done.stdout


def test_model_copy_reads_the_same(tmp_path):
    # Reading depends on saved_model.pb alone, not on variables/ or the folder's name.
    shutil.copy(SHAPES / "1" / "saved_model.pb", tmp_path / "saved_model.pb")
    assert read_signatures(tmp_path) == read_signatures(SHAPES / "1")
