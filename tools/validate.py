"""Offline review that is offline: render a stack and validate every object it would apply.

    python -m tools.validate --stack dev                    # render in memory, validate
    python -m tools.validate --stack kind --out build/kind  # and write the render there
    python -m tools.validate --stack-file Pulumi.mine.yaml --versions 1.33,1.36

Each built-in object is checked against the strict OpenAPI schemas (unknown fields are errors, as
with `kubectl apply --validate=strict`) of every supported Kubernetes version, from the schemas
kubernetes-validate ships; each custom resource against the openAPIV3Schema of its CRD in
components/crds/, closed the way the API server prunes (a field the schema does not know is an
error). No cluster, no network, no credentials.

What only an API server checks is not covered: admission (Pod Security, webhooks), CEL rules
(x-kubernetes-validations), names that already exist, quotas. For those:
`kubectl apply --dry-run=server --validate=strict -f build/<stack>/kubernetes.yaml` on a cluster.

Exit codes: 0 valid, 1 invalid objects (each problem on stderr), 2 invalid stack config.
"""

import argparse
import copy
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
import yaml
from kubernetes_validate import utils as schemas

from config.paths import PROJECT_ROOT
from tools.render import __main__ as render_cli
from tools.render.cli import BAD_STACK, add_stack_arguments, read_stack
from tools.render.engine import render_stack

# EKS supports 1.33-1.36 here; 1.30-1.32 for clusters of your own (minikube, kind).
KUBERNETES_VERSIONS = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36")
CRD_DIR = PROJECT_ROOT / "components" / "crds"


# --- built-in kinds: kubernetes-validate's strict schemas, loaded once -------------------------


def _schema_dir(version: str) -> str:
    """kubernetes-validate's directory for a version: the newest release not newer than it."""
    wanted = schemas.major_minor(version)
    found = [v for v in schemas.all_versions() if schemas.major_minor(v) <= wanted]
    if not found or wanted > schemas.major_minor(schemas.latest_version()):
        raise ValueError(f"Kubernetes {version} is not among kubernetes-validate's schemas")
    return f"kubernetes-json-schema/v{found[-1]}-local-strict"


@cache
def _registry(schema_dir: str) -> referencing.Registry[Any]:
    # The shared definitions (1.5 MB of JSON per version): parsed once, not once per object.
    definitions = schemas.schema_contents(f"{schema_dir}/_definitions.json", schema_dir)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@cache
def _builtin_validator(schema_dir: str, kind: str, api_version: str) -> Any:
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schemas.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", "")
    except FileNotFoundError:
        return None
    registry = referencing.Resource.from_contents(schema) @ _registry(schema_dir)
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- custom resources: the CRDs we ship, closed like the API server's pruning ------------------


def _closed(schema: Any) -> Any:
    """Every object schema that neither allows extra properties nor preserves unknown fields
    refuses them: jsonschema would otherwise accept what the API server prunes."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_schemas(crd_dir: Path = CRD_DIR) -> Mapping[tuple[str, str], Any]:
    """(apiVersion, kind) -> a validator for each version of each CRD in `crd_dir`."""
    found: dict[tuple[str, str], Any] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return found


# --- checking ---------------------------------------------------------------------------------


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{obj.get('kind')} {where}{metadata.get('name')}"


def _errors(validator: Any, body: Mapping[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.path)))
    ]


def object_problems(
    obj: Mapping[str, Any], versions: Sequence[str] = KUBERNETES_VERSIONS
) -> list[str]:
    """What is wrong with one object, each line naming it (and the version, for built-ins)."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    custom = crd_schemas().get((api_version, kind))
    if custom is not None:
        # metadata is the API server's (ObjectMeta), not the CRD's to describe.
        body = {k: v for k, v in obj.items() if k != "metadata"}
        return [f"{_name(obj)} (CRD {api_version}): {e}" for e in _errors(custom, body)]
    found = []
    for version in versions:
        validator = _builtin_validator(_schema_dir(version), kind, api_version)
        if validator is None:
            found.append(
                f"{_name(obj)}: no schema for {api_version} {kind} in Kubernetes {version} "
                f"(a removed API, or a custom resource without a CRD in {CRD_DIR.name}/)"
            )
            continue
        found += [f"{_name(obj)} (Kubernetes {version}): {e}" for e in _errors(validator, obj)]
    return found


def problems(
    objects: Iterable[Mapping[str, Any]], versions: Sequence[str] = KUBERNETES_VERSIONS
) -> list[str]:
    """Every problem of every object, for every version; empty when all are valid."""
    return [line for obj in objects for line in object_problems(obj, versions)]


@dataclass(frozen=True)
class Summary:
    builtin: int
    custom: int


def summary(objects: Sequence[Mapping[str, Any]]) -> Summary:
    custom = sum(1 for o in objects if (o.get("apiVersion"), o.get("kind")) in crd_schemas())
    return Summary(len(objects) - custom, custom)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.validate", description=__doc__.split("\n\n")[0]
    )
    add_stack_arguments(parser, "validates")
    parser.add_argument("--out", type=Path, help="also write the render here (as tools.render)")
    parser.add_argument(
        "--versions",
        default=",".join(KUBERNETES_VERSIONS),
        help=f"Kubernetes versions, comma-separated (default {','.join(KUBERNETES_VERSIONS)})",
    )
    args = parser.parse_args(argv)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    try:
        for version in versions:
            _schema_dir(version)
    except ValueError as error:
        parser.error(str(error))
    rendered = read_stack(args, render_stack)
    if rendered is None:
        return BAD_STACK
    if args.out is not None:
        render_cli.write(rendered, args.out)
    objects = rendered.kubernetes_objects
    found = problems(objects, versions)
    counts = summary(objects)
    where = f" (render in {args.out})" if args.out is not None else ""
    if found:
        print(f"validate: stack {rendered.stack}: {len(found)} problems{where}:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(
        f"validate: stack {rendered.stack}: {counts.builtin} objects valid under the strict "
        f"schemas of Kubernetes {versions[0]}-{versions[-1]}, {counts.custom} custom resources "
        f"under their CRDs{where}; offline: admission, CEL rules and existing objects need "
        "`kubectl apply --dry-run=server`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
