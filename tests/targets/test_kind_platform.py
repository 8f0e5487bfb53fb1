"""Target kind as the program uses it, built alone: its provider, metrics-server from the pinned
chart on that provider before every object, node ports on the host's loopback address."""

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime.sync_await import _sync_await

from config.service import ServiceType
from config.stack import parse
from targets import Endpoint, Exposure, Platform, platform_for
from tools.render import run_under_mocks

KIND = {"tfserving:target": "kind", "tfserving:clusterName": "lab"}
CHART = "kubernetes:helm.sh/v4:Chart"


def on_kind(
    use: Callable[[Platform], Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `use(platform)` under the mock runtime; its resources and its outputs, resolved."""
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in KIND.items()}
    resolved: dict[str, Any] = {}

    def program() -> None:
        platform = platform_for(parse(raw))
        found = _sync_await(pulumi.Output.from_input(dict(use(platform))).future())
        resolved.update(found or {})

    return run_under_mocks("test", raw, program), resolved


def test_metrics_server_is_the_pinned_chart_on_the_clusters_provider_before_everything():
    records, found = on_kind(
        lambda p: {"provider": p.provider.urn, "after": [r.urn for r in p.depends_on]}
    )
    (provider,) = [r for r in records if r["type"] == "pulumi:providers:kubernetes"]
    assert (provider["name"], provider["inputs"]) == ("kind", {"context": "kind-lab"})
    (chart,) = [r for r in records if r["type"] == CHART]
    assert chart["name"] == "kind-metrics-server"
    assert chart["inputs"] == {
        "chart": "metrics-server",
        "version": "3.13.1",
        "repositoryOpts": {"repo": "https://kubernetes-sigs.github.io/metrics-server/"},
        "namespace": "kube-system",
        "values": {"args": ["--kubelet-insecure-tls"]},
    }
    assert chart["provider"].startswith(provider["urn"] + "::")
    assert found == {"provider": provider["urn"], "after": [chart["urn"]]}


def test_node_ports_are_printed_on_the_hosts_loopback_address():
    urls = {"predictUrl": Endpoint("http", 8501, "/v1/models/m:predict")}

    def use(platform: Platform) -> dict[str, Any]:
        service = k8s.core.v1.Service(
            "svc",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace="models"),
            spec=k8s.core.v1.ServiceSpecArgs(type="NodePort"),
            opts=pulumi.ResourceOptions(provider=platform.provider),
        )
        return platform.expose(Exposure(service, "models", ServiceType.NODE_PORT, urls, "fwd"))

    records, found = on_kind(use)
    (svc,) = [r["state"]["metadata"]["name"] for r in records if r["name"] == "svc"]
    kubectl = "kubectl --context kind-lab -n models"
    port = f"$({kubectl} get svc {svc} -o jsonpath='{{.spec.ports[?(@.name==\"http\")].nodePort}}')"
    assert found == {
        "fwd": f"{kubectl} port-forward svc/{svc} 8501:8501",
        "predictUrlCommand": f'echo "http://127.0.0.1:{port}/v1/models/m:predict"',
    }
