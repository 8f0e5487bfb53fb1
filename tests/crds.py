"""Custom resources checked against the CRDs they belong to (components/crds/), strictly.

Kubernetes validates a custom resource with its CRD's openAPIV3Schema and prunes (or, with
`kubectl --validate=strict`, refuses) fields the schema does not know. jsonschema alone would
accept unknown fields, so every object schema without `additionalProperties` or
`x-kubernetes-preserve-unknown-fields` is made closed before validating. CEL rules
(x-kubernetes-validations) are the API server's alone.
"""

import copy
from functools import cache
from typing import Any

import jsonschema
import yaml

from config.paths import PROJECT_ROOT

CRD_DIR = PROJECT_ROOT / "components" / "crds"
BUILTIN_GROUPS = {
    "",
    "apps",
    "autoscaling",
    "batch",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}


def is_custom_resource(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group not in BUILTIN_GROUPS


def _closed(schema: Any) -> Any:
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
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            found[(f"{group}/{version['name']}", kind)] = _closed(schema)
    return found


def custom_resource_problems(obj: dict[str, Any]) -> list[str]:
    schema = _schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"no CRD for {obj['apiVersion']} {obj['kind']} in {CRD_DIR}"]
    validator = jsonschema.Draft7Validator(schema)
    # metadata is the API server's (ObjectMeta), not the CRD's to describe.
    body = {k: v for k, v in obj.items() if k != "metadata"}
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(body)]
