"""Run the real program under Pulumi's mock runtime and keep what it declares.

Auto-naming is emulated as Pulumi does it (`<logical name>-<8 chars>` when `metadata.name` is
not set), deterministically: the suffix comes from the resource's identity, so renders are
stable between runs. ConfigMaps and Secrets are replaced by pulumi-kubernetes when their data
changes, so their suffix also covers their data: a changed ConfigMap gets a new name here too.
"""

import asyncio
import contextvars
import hashlib
import json
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from config.errors import SettingsError
from config.paths import PROJECT_ROOT
from tools.render import cloud

PROJECT = "tfserving"
# kubectl applies documents in order: namespaces and config before what uses them.
_KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service", "Deployment"]
_RESOURCE_REFERENCES = resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
_REPLACED_ON_CHANGE = {"kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"}

# Outputs of resources that a real provider computes; type token -> outputs from inputs.
# Remote components (EKS, awsx) come back as one opaque resource, so they need curated values.
CuratedOutputs = Callable[[pulumi_mocks.MockResourceArgs, str], dict[str, Any]]
CURATED: dict[str, CuratedOutputs] = {**cloud.CURATED}


def autoname(urn: str, type_: str, name: str, inputs: dict[str, Any]) -> str:
    """`<name>-<8 chars>` from the resource's URN (stack, project, parent chain, type, name)."""
    identity = urn
    if type_ in _REPLACED_ON_CHANGE:
        content = {k: inputs.get(k) for k in ("data", "binaryData", "stringData")}
        identity += "|" + json.dumps(content, sort_keys=True)
    return f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


# The URN of the registration being handled: the stock monitor calls `new_resource` on the
# thread that handles the registration, with the type and name but without the parent.
_REGISTERING = threading.local()


class RenderMocks(pulumi.runtime.Mocks):
    def __init__(self, stack: str) -> None:
        self.stack = stack

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ.startswith("kubernetes:") and "metadata" in state:
            metadata = dict(state.get("metadata") or {})
            if not metadata.get("name"):
                urn = getattr(_REGISTERING, "urn", f"{self.stack}::{args.typ}::{args.name}")
                metadata["name"] = autoname(urn, args.typ, args.name, state)
            state["metadata"] = metadata
            resource_id = "/".join(filter(None, [metadata.get("namespace"), metadata["name"]]))
        curated = CURATED.get(args.typ)
        if curated is not None:
            state = {**state, **curated(args, self.stack)}
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        curated = CURATED.get(args.token)
        if curated is not None:
            return curated(args, self.stack), []  # type: ignore[arg-type]
        return {}, []  # the stock mock monitor iterates the failures: never None


@dataclass
class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, also keeping what the engine would see of each registration."""

    mocks: pulumi.runtime.Mocks
    records: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.mocks)

    # A resource passed as an input (an EKS cluster to its node groups) would be rebuilt from a
    # reference by the stock monitor, on another event loop, which fails. Without the feature the
    # SDK sends its URN (components) or id (custom resources) instead, as older engines had it.
    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != _RESOURCE_REFERENCES]
        return type(info)(supportedFeatures=features)

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        _REGISTERING.urn = self.make_urn(request.parent, request.type, request.name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.records.append(
                {
                    "urn": response.urn,
                    "type": request.type,
                    "name": request.name,
                    "custom": bool(request.custom),
                    "parent": request.parent or None,
                    "provider": request.provider or None,
                    "dependencies": sorted(request.dependencies),
                    "inputs": rpc.deserialize_properties(request.object),
                    "state": self.resources[response.urn].state if request.custom else None,
                }
            )
        return response


@dataclass
class Rendered:
    stack: str
    resources: list[dict[str, Any]]
    kubernetes_objects: list[dict[str, Any]]
    outputs: dict[str, Any]


def stack_config(stack_file: Path) -> dict[str, str]:
    """The config of a Pulumi.<stack>.yaml, as the engine hands it to a program (JSON objects).

    A key without a namespace is the project's, as Pulumi reads a stack file (`model:` is
    `tfserving:model`; pulumi/pulumi sdk/go/common/workspace/loaders.go,
    stackConfigNamespacedWithProject), so the render sees what `pulumi up` would. A key given
    both ways is an error: which one Pulumi keeps is not defined.
    """
    document = yaml.safe_load(stack_file.read_text()) or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError([f"{stack_file}: 'config' must be a mapping"])
    found: dict[str, str] = {}
    problems = []
    for key, value in config.items():
        full_key = key if ":" in str(key) else f"{PROJECT}:{key}"
        if full_key in found or (full_key != key and full_key in config):
            problems.append(
                f"{full_key} is given twice, as {full_key} and as {key} (Pulumi reads a key "
                f"without a namespace as the project's: {key} is {full_key}); keep one"
            )
            continue
        found[full_key] = value if isinstance(value, str) else json.dumps(value)
    if problems:
        raise SettingsError(problems)
    return found


def render_stack(stack_file: Path, *, reveal_secrets: bool = False) -> Rendered:
    """Run the program for one stack file under mocks; raise SettingsError on bad config.
    Secrets are redacted unless `reveal_secrets` (for tests of what the program sends)."""
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    outputs: dict[str, Any] = {}

    def program() -> None:
        runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__pulumi__")
        root = pulumi.runtime.settings.get_root_resource()
        exported = getattr(root, "outputs", {})
        outputs.update(_sync_await(pulumi.Output.from_input(exported).future()) or {})

    records = run_under_mocks(stack, stack_config(stack_file), program)
    resources = [
        {k: _whole_numbers(v, reveal_secrets) for k, v in r.items() if k != "state"}
        for r in sorted(records, key=lambda r: r["urn"])
    ]
    objects = [
        _kubernetes_object(r, reveal_secrets)
        for r in records
        if r["type"].startswith("kubernetes:") and r["custom"]
    ]
    objects.sort(key=_apply_order)
    return Rendered(stack, resources, objects, outputs)


def run_under_mocks(
    stack: str, config: dict[str, str], program: Callable[[], None]
) -> list[dict[str, Any]]:
    """Run `program` as the stack's Pulumi program under mocks; return what it registered.

    Each run gets a fresh context (config, root stack, settings) and a fresh event loop: nothing
    of an earlier run, or of whatever ran before in this process, leaks in or out.
    """

    def run() -> list[dict[str, Any]]:
        pulumi.runtime.set_all_config(config)
        mocks = RenderMocks(stack)
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor
        )
        _sync_await(run_pulumi_func(program))
        return monitor.records

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return contextvars.Context().run(run)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _kubernetes_object(record: dict[str, Any], reveal_secrets: bool) -> dict[str, Any]:
    # Desired state only: `status` (e.g. a mocked load balancer address) is not for applying.
    state = {k: v for k, v in record["state"].items() if not k.startswith("__") and k != "status"}
    head = {k: state.pop(k) for k in ("apiVersion", "kind", "metadata") if k in state}
    return _whole_numbers({**head, **state}, reveal_secrets)


# What the render writes in place of a Pulumi secret's value (a Secret's data, an API key):
# the files are for review and scanners, never for credentials.
REDACTED = "[secret]"


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return REDACTED


def _is_secret(value: Any) -> bool:
    # How the engine marks a secret inside properties (pulumi/runtime/rpc.py).
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _whole_numbers(value: Any, reveal_secrets: bool = False) -> Any:
    """The engine carries numbers as doubles; Kubernetes wants 8501, not 8501.0. Secrets are
    written redacted."""
    if _is_secret(value):
        inner = value.get("value")
        return _whole_numbers(inner, reveal_secrets) if reveal_secrets else _redacted(inner)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v, reveal_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v, reveal_secrets) for v in value]
    return value


def _apply_order(obj: dict[str, Any]) -> tuple[int, str, str]:
    # Registration order varies between runs (RPCs are concurrent); this order does not.
    kind = obj.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, kind, obj.get("metadata", {}).get("name", "")
