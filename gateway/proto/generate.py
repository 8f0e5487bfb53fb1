"""Regenerate the committed *_pb2.py / *_pb2_grpc.py (+ .pyi stubs) from the .proto files.

Run from the repository root: ``python -m gateway.proto.generate``.
Needs the dev-only tools grpcio-tools and mypy-protobuf (not in the image).
The protoc bundled with grpcio-tools decides the protobuf runtime the output needs,
so keep grpcio-tools on the same protobuf major as gateway/requirements.txt.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # dev-only dependency: this module is never imported at run time

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parents[1]  # proto paths are "gateway/proto/x.proto" relative to it
# Keeps ruff (lint, format) and strict mypy flags off generated stubs pyproject does not exclude.
_PYI_HEADER = "# ruff: noqa\n# fmt: off\n# mypy: warn-unused-ignores=False\n"


def _plugin(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise SystemExit(f"{name} not found: pip install mypy-protobuf")
    return found


def generate(out_root: Path = REPO_ROOT) -> list[Path]:
    """Compile every .proto under gateway/proto into out_root/gateway/proto."""
    well_known = resources.files("grpc_tools") / "_proto"
    protos = sorted(p.relative_to(REPO_ROOT).as_posix() for p in PROTO_DIR.glob("*.proto"))
    services = [p for p in protos if p.endswith("_service.proto")]
    out_dir = out_root / "gateway" / "proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    common = [
        "grpc_tools.protoc",
        f"-I{REPO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
    ]
    messages = [f"--python_out={out_root}", f"--mypy_out={out_root}", *protos]
    # gRPC stubs only for the files that declare a service (no empty *_pb2_grpc.py files).
    stubs = [f"--grpc_python_out={out_root}", f"--mypy_grpc_out={out_root}", *services]
    for extra in (messages, stubs):
        if protoc.main([*common, *extra]) != 0:
            raise SystemExit("protoc failed")
    written = sorted(out_dir.glob("*_pb2*.py*"))
    for path in written:
        if path.suffix == ".pyi" and not path.read_text().startswith(_PYI_HEADER):
            path.write_text(_PYI_HEADER + path.read_text())
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (tests)")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
