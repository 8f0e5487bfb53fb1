"""Build one component (not the whole program) under Pulumi's mock runtime and read back exactly
what it registered, or turn the typed `...Args` a builder returns into plain data."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi._types as pulumi_types
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from tools.render import engine, run_under_mocks

# How a secret value travels between the SDK and the engine: {SIG_KEY: SECRET_SIG, "value": ...}.
SIG_KEY = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig


def plain(value: Any) -> Any:
    """Typed input classes (`...Args`) as the camelCase mappings Pulumi sends, all the way down."""
    if pulumi_types.is_input_type(type(value)):
        return {k: plain(v) for k, v in pulumi_types.input_type_to_dict(value).items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass
class Registered:
    records: list[dict[str, Any]]
    outputs: dict[str, Any]
    # The data sources asked: (token, arguments), in order.
    invokes: list[tuple[str, dict[str, Any]]]
    # What each component registered as its outputs, by URN.
    component_outputs: dict[str, dict[str, Any]]
    # The provider (`<urn>::<id>`) each data source was asked through, in the same order.
    invoke_providers: list[str]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == type_]

    def one(self, type_: str, name: str | None = None) -> dict[str, Any]:
        found = [r for r in self.of(type_) if name is None or r["name"] == name]
        assert len(found) == 1, (
            f"{len(found)} {type_} {name or ''}: {[r['name'] for r in self.of(type_)]}"
        )
        return found[0]

    def named(self, name: str) -> dict[str, Any]:
        found = [r for r in self.records if r["name"] == name]
        assert len(found) == 1, f"{len(found)} resources named {name}"
        return found[0]

    def urn(self, name: str) -> str:
        return str(self.named(name)["urn"])

    def registered_outputs(self, type_: str, name: str) -> dict[str, Any]:
        """What a component passed to register_outputs."""
        (found,) = [
            o for urn, o in self.component_outputs.items() if urn.endswith(f"{type_}::{name}")
        ]
        return found

    def types(self) -> list[tuple[str, str]]:
        return sorted((r["type"], r["name"]) for r in self.records)


def register(
    build: Callable[[], Any], config: dict[str, Any] | None = None, stack: str = "test"
) -> Registered:
    """Run `build()` as a Pulumi program; what it registered, and its return value resolved
    (a mapping of outputs), numbers as Kubernetes writes them (8501, not 8501.0)."""
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    outputs: dict[str, Any] = {}

    def program() -> None:
        result = build()
        if result is not None:
            outputs.update(_sync_await(pulumi.Output.from_input(result).future()) or {})

    invokes: list[tuple[str, dict[str, Any]]] = []
    invoke_providers: list[str] = []
    component_outputs: dict[str, dict[str, Any]] = {}
    answer, outputs_of = engine.RenderMocks.call, engine.RecordingMonitor.RegisterResourceOutputs

    def call(mocks: engine.RenderMocks, args: Any) -> Any:
        invokes.append((args.token, dict(args.args)))
        invoke_providers.append(str(args.provider or ""))
        return answer(mocks, args)

    def register_outputs(monitor: engine.RecordingMonitor, request: Any) -> Any:
        component_outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return outputs_of(monitor, request)

    # Listen in on the mock engine for this run only.
    setattr(engine.RenderMocks, "call", call)  # noqa: B010
    setattr(engine.RecordingMonitor, "RegisterResourceOutputs", register_outputs)  # noqa: B010
    try:
        records = run_under_mocks(stack, raw, program)
    finally:
        setattr(engine.RenderMocks, "call", answer)  # noqa: B010
        setattr(engine.RecordingMonitor, "RegisterResourceOutputs", outputs_of)  # noqa: B010
    return Registered(
        [whole(r) for r in records],
        whole(outputs),
        invokes,
        whole(component_outputs),
        invoke_providers,
    )


def whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole(v) for v in value]
    return value
