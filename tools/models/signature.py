"""Read the signatures of a TensorFlow SavedModel without TensorFlow.

    venv/bin/python -m tools.models.signature models/half_plus_two/1 [--json] [--tag serve]

or `read_signatures(path)` -> {signature name: {"method_name", "inputs", "outputs"}}, where each
input/output key maps to {"name": graph tensor name, "dtype": "DT_FLOAT"..., "shape": [-1, ...]
or None when the rank is unknown}. -1 is an unknown dimension (the batch, usually).

saved_model.pb is parsed with our own subset of TensorFlow's protos, in
tools/models/proto/tfserving_savedmodel.proto. After editing it, regenerate the committed module
from the repository root with grpcio-tools 1.71.2 (its protoc 29 output runs on protobuf 5.29;
later grpcio-tools need protobuf 6+):

    venv/bin/python -m grpc_tools.protoc -I tools/models --python_out=tools/models \
        --pyi_out=tools/models tools/models/proto/tfserving_savedmodel.proto
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

from google.protobuf.message import DecodeError

from tools.models.proto import tfserving_savedmodel_pb2 as pb

SERVE_TAG = "serve"  # the tag TF Serving loads by default (--saved_model_tags)


class TensorSpec(TypedDict):
    name: str
    dtype: str
    shape: list[int] | None


class Signature(TypedDict):
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


class SavedModelError(ValueError):
    """The path holds no readable SavedModel (or not the requested meta graph)."""


def _pb_path(path: Path) -> Path:
    if path.is_file():
        return path
    pb_file = path / "saved_model.pb"
    if pb_file.is_file():
        return pb_file
    if not path.exists():
        raise SavedModelError(f"{path} does not exist")
    if (path / "saved_model.pbtxt").is_file():
        raise SavedModelError(f"{path} has only saved_model.pbtxt; text format is not supported")
    hint = ""
    versions = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name.isdigit())
    if versions:  # a model base path, as given to TF Serving, rather than one version
        hint = f" (it looks like a model base path: pass a version, e.g. {path / versions[-1]})"
    raise SavedModelError(f"no saved_model.pb in {path}{hint}")


def _spec(info: pb.TensorInfo) -> TensorSpec:
    try:
        dtype = pb.DataType.Name(info.dtype)
    except ValueError:  # a type newer than our .proto
        dtype = f"DT_{info.dtype}"
    shape: list[int] | None = None
    if info.HasField("tensor_shape") and not info.tensor_shape.unknown_rank:
        shape = [d.size for d in info.tensor_shape.dim]
    return {"name": info.name, "dtype": dtype, "shape": shape}


def read_signatures(
    path: str | os.PathLike[str], tag: str = SERVE_TAG, include_internal: bool = False
) -> dict[str, Signature]:
    """Signatures of the meta graph tagged `tag` in a SavedModel directory or saved_model.pb.

    Names starting with "__" (TF2's `__saved_model_init_op`) are internal and left out unless
    `include_internal`.
    """
    pb_file = _pb_path(Path(path))
    saved_model = pb.SavedModel()
    try:
        saved_model.ParseFromString(pb_file.read_bytes())
    except DecodeError as exc:
        raise SavedModelError(f"{pb_file} is not a valid SavedModel protobuf: {exc}") from exc
    # Garbage can parse as a message of unknown fields only: a SavedModel has meta graphs.
    if not saved_model.meta_graphs:
        raise SavedModelError(f"{pb_file} is not a SavedModel: it contains no meta graph")
    tag_sets = [list(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]
    graph = next((mg for mg in saved_model.meta_graphs if tag in mg.meta_info_def.tags), None)
    if graph is None:
        raise SavedModelError(f"{pb_file} has no meta graph tagged {tag!r}; tag sets: {tag_sets}")
    return {
        name: {
            "method_name": sig.method_name,
            "inputs": {key: _spec(info) for key, info in sorted(sig.inputs.items())},
            "outputs": {key: _spec(info) for key, info in sorted(sig.outputs.items())},
        }
        for name, sig in sorted(graph.signature_def.items())
        if include_internal or not name.startswith("__")
    }


def _describe(signatures: dict[str, Signature]) -> str:
    lines = []
    for name, sig in signatures.items():
        lines.append(f"{name} ({sig['method_name'] or 'no method name'})")
        for part in ("inputs", "outputs"):
            lines.append(f"  {part}:")
            specs: dict[str, TensorSpec] = sig[part]
            for key, spec in specs.items():
                shape = "unknown rank" if spec["shape"] is None else spec["shape"]
                lines.append(f"    {key}: {spec['dtype']} {shape} ({spec['name']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="SavedModel version directory, or its saved_model.pb")
    parser.add_argument("--tag", default=SERVE_TAG, help="meta graph tag (default: serve)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--all", action="store_true", help="include internal __ signatures")
    args = parser.parse_args(argv)
    try:
        signatures = read_signatures(args.path, tag=args.tag, include_internal=args.all)
    except (SavedModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(signatures, indent=2) if args.json else _describe(signatures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
