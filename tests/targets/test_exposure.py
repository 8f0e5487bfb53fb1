"""Exposure you choose: internal by default, the internet only when asked and said who, TF
Serving's gRPC (model management) off a world-open load balancer unless acknowledged, TLS."""

from typing import Any

import pytest

from components.model_server import WORLD_GRPC_ANNOTATION
from policy import resources, rules
from tests.config.support import render_expecting_error
from tests.conftest import eks_config, merged, one
from tools.render import Rendered

SERVICE = "tfserving:service"
LB = "service.beta.kubernetes.io/aws-load-balancer-"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f8d3a8e-1c5b-4f6e-9a7d-2b4c6e8f0a1c"


def _server(rendered: Rendered) -> dict[str, Any]:
    return one(rendered, "Service", "tfserving-server-")


def _policy_problems(rendered: Rendered) -> list[str]:
    """What the policy pack says of the rendered Services (the same props Pulumi sends it)."""
    return [
        problem
        for r in rendered.resources
        if r["type"] == "kubernetes:core/v1:Service"
        for problem in rules.violations(r["type"], r["inputs"], r["name"])
    ]


def test_a_load_balancer_is_internal_unless_the_stack_says_otherwise(render_eks):
    rendered = render_eks({SERVICE: {"scheme": None, "allowedSourceRanges": None}})
    service = _server(rendered)
    assert service["metadata"]["annotations"] == {f"{LB}type": "nlb", f"{LB}internal": "true"}
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/16"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "grpc"]
    assert _policy_problems(rendered) == []


def test_internet_facing_without_source_ranges_exits_2_naming_the_key(tmp_path, capsys):
    config = merged(eks_config(), {SERVICE: {"allowedSourceRanges": None}})
    stderr = render_expecting_error(tmp_path, config, capsys)
    assert (
        "tfserving:service.allowedSourceRanges is required for an internet-facing load " in stderr
    )
    assert "curl -s https://checkip.amazonaws.com" in stderr


def test_world_open_load_balancer_carries_rest_only(render_eks):
    rendered = render_eks()  # the committed eks stack: 0.0.0.0/0
    service = _server(rendered)
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    assert WORLD_GRPC_ANNOTATION not in service["metadata"]["annotations"]
    assert "grpcExternalAddress" not in rendered.outputs
    assert _policy_problems(rendered) == []


@pytest.mark.parametrize("ranges", [["0.0.0.0/0"], ["::/0"], ["203.0.113.0/24", "::/0"]])
def test_acknowledged_world_grpc_is_annotated_for_the_policy_pack(render_eks, ranges):
    rendered = render_eks({SERVICE: {"allowedSourceRanges": ranges, "exposeGrpcToInternet": True}})
    service = _server(rendered)
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "grpc"]
    # The program writes exactly what the policy pack reads as the acknowledgement.
    assert WORLD_GRPC_ANNOTATION == resources.ALLOW_WORLD_GRPC
    assert service["metadata"]["annotations"][WORLD_GRPC_ANNOTATION] == "true"
    assert _policy_problems(rendered) == []
    assert rendered.outputs["grpcExternalAddress"].endswith(":8500")


def test_the_policy_pack_refuses_world_grpc_without_the_acknowledgement(render_eks):
    rendered = render_eks(
        {SERVICE: {"allowedSourceRanges": ["0.0.0.0/0"], "exposeGrpcToInternet": True}}
    )
    (service,) = [
        r
        for r in rendered.resources
        if r["name"] == "tfserving-server" and r["type"] == "kubernetes:core/v1:Service"
    ]
    props = dict(service["inputs"])
    props["metadata"] = {k: v for k, v in props["metadata"].items() if k != "annotations"}
    assert any("grpc" in p for p in rules.violations(service["type"], props, service["name"]))


def test_narrow_ranges_keep_grpc_on_the_load_balancer(render_eks):
    rendered = render_eks({SERVICE: {"allowedSourceRanges": ["198.51.100.7/32"]}})
    assert [p["name"] for p in _server(rendered)["spec"]["ports"]] == ["http", "grpc"]
    assert rendered.outputs["grpcExternalAddress"].endswith(":8500")


def test_acknowledgement_without_a_world_open_range_exits_2(tmp_path, capsys):
    changes = {SERVICE: {"allowedSourceRanges": ["198.51.100.7/32"], "exposeGrpcToInternet": True}}
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    assert "tfserving:service.exposeGrpcToInternet only applies when exposeGrpc is true" in stderr


def test_tls_covers_rest_with_the_cloud_providers_nlb(render_eks):
    rendered = render_eks({SERVICE: {"tls": {"certificateArn": CERTIFICATE}}})
    annotations = _server(rendered)["metadata"]["annotations"]
    assert annotations == {
        f"{LB}type": "nlb",
        f"{LB}ssl-cert": CERTIFICATE,
        f"{LB}ssl-ports": "http",
    }
    assert rendered.outputs["predictUrl"].startswith("https://")


def test_tls_on_grpc_needs_auto_mode_alpn(tmp_path, capsys):
    changes = {
        SERVICE: {
            "allowedSourceRanges": ["198.51.100.7/32"],
            "tls": {"certificateArn": CERTIFICATE},
        }
    }
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    assert "tfserving:service.exposeGrpc must be false with tls in compute nodeGroups" in stderr


def test_certificate_from_another_region_exits_2(tmp_path, capsys):
    other = CERTIFICATE.replace("us-east-1", "eu-west-1")
    stderr = render_expecting_error(
        tmp_path, merged(eks_config(), {SERVICE: {"tls": {"certificateArn": other}}}), capsys
    )
    assert (
        "tfserving:service.tls.certificateArn is in eu-west-1, but the stack deploys to "
        "aws:region us-east-1" in stderr
    )


def test_not_a_certificate_arn_exits_2(tmp_path, capsys):
    stderr = render_expecting_error(
        tmp_path, merged(eks_config(), {SERVICE: {"tls": {"certificateArn": "cert"}}}), capsys
    )
    assert "tfserving:service.tls.certificateArn must be an ACM certificate ARN" in stderr


@pytest.mark.parametrize("key", ["scheme", "tls"])
def test_load_balancer_keys_on_other_types_exit_2(tmp_path, capsys, key):
    value: Any = "internal" if key == "scheme" else {"certificateArn": CERTIFICATE}
    changes = {SERVICE: {"type": "ClusterIP", "allowedSourceRanges": None, key: value}}
    if key == "tls":
        changes[SERVICE]["scheme"] = None
    stderr = render_expecting_error(tmp_path, merged(eks_config(), changes), capsys)
    assert f"tfserving:service.{key} only applies to type LoadBalancer, not ClusterIP" in stderr


def test_load_balancer_on_minikube_exits_2(tmp_path, capsys):
    from tests.conftest import dev_config  # noqa: PLC0415

    changes = {SERVICE: {"type": "LoadBalancer", "nodePort": None}}
    stderr = render_expecting_error(tmp_path, merged(dev_config(), changes), capsys)
    assert "tfserving:service.type must not be LoadBalancer on minikube" in stderr
