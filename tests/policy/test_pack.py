"""The policy pack itself, over the analyzer protocol the Pulumi engine speaks."""

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from config.paths import PROJECT_ROOT
from policy import resources, rules
from tests.policy.support import (
    GRPC,
    REST,
    deployment,
    load_balancer,
    namespace,
    network_policy,
    no_policy_message,
)

# --- the pack itself, over the analyzer protocol the Pulumi engine speaks -------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    # Pulumi starts a Python pack as `python -u .` in its directory; it prints its gRPC port.
    proc = subprocess.Popen(
        [sys.executable, "-u", "."], cwd=PROJECT_ROOT / "policy", stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def analyze(stub: Any, type_: str, props: dict[str, Any]) -> list[Any]:
    struct = struct_pb2.Struct()
    struct.update(props)
    urn = f"urn:pulumi:dev::tfserving::{type_}::web"
    request = analyzer_pb2.AnalyzeRequest(type=type_, properties=struct, urn=urn, name="web")
    return list(stub.Analyze(request, timeout=10).diagnostics)


def analyze_stack(stub: Any, resources: list[tuple[str, dict[str, Any], str]]) -> list[Any]:
    request = analyzer_pb2.AnalyzeStackRequest()
    for type_, props, name in resources:
        struct = struct_pb2.Struct()
        struct.update(props)
        request.resources.add(
            type=type_,
            properties=struct,
            urn=f"urn:pulumi:dev::tfserving::{type_}::{name}",
            name=name,
        )
    return list(stub.AnalyzeStack(request, timeout=10).diagnostics)


def test_the_pack_declares_every_rule_as_mandatory(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == "tfserving-policies"
    assert [p.name for p in info.policies] == [
        *(r.name for r in rules.RULES),
        *(r.name for r in rules.STACK_RULES),
    ]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_pack_reports_violations_as_mandatory(analyzer: Any) -> None:
    assert analyze(analyzer, resources.DEPLOYMENT, deployment()) == []
    found = analyze(analyzer, resources.DEPLOYMENT, deployment(image="tensorflow/serving:latest"))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("image-pinned", analyzer_pb2.MANDATORY)
    ]
    assert "uses :latest" in found[0].message


def test_unknown_values_during_preview_are_advisory_not_failures(analyzer: Any) -> None:
    # The engine's sentinel for a string not known before the update (e.g. a freshly built image).
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    found = analyze(analyzer, resources.DEPLOYMENT, deployment(image=unknown))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("image-pinned", analyzer_pb2.ADVISORY)
    ]
    assert "during preview" in found[0].message


def test_the_pack_runs_the_stack_rules_over_the_whole_stack(analyzer: Any) -> None:
    ns = (resources.NAMESPACE, namespace("tfserving"), "tfserving-namespace")
    policy = (resources.NETWORK_POLICY, network_policy("tfserving"), "default-deny")
    assert analyze_stack(analyzer, [ns, policy]) == []
    found = analyze_stack(analyzer, [ns])
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("network-policy-per-namespace", analyzer_pb2.MANDATORY)
    ]
    # The engine shows the policy's description, then the message.
    (rule,) = rules.STACK_RULES
    assert found[0].message == f"{rule.description}\n" + no_policy_message(
        "tfserving-namespace", "tfserving"
    )


def test_a_namespace_unknown_during_preview_is_advisory(analyzer: Any) -> None:
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    found = analyze_stack(
        analyzer, [(resources.NAMESPACE, namespace(unknown), "tfserving-namespace")]
    )
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("network-policy-per-namespace", analyzer_pb2.ADVISORY)
    ]
    assert "during preview" in found[0].message


def test_the_pack_reports_a_world_open_grpc_port(analyzer: Any) -> None:
    found = analyze(analyzer, resources.SERVICE, load_balancer([REST, GRPC], ["0.0.0.0/0"]))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("tfserving-grpc-not-world-open", analyzer_pb2.MANDATORY)
    ]
