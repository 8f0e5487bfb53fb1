"""Target kind as the program uses it, built alone (its render: test_kind.py): its provider,
metrics-server from the pinned chart on that provider before every object, node ports on the
host's loopback address."""

from collections.abc import Callable, Mapping
from typing import Any

from config.service import ServiceType
from targets import Endpoint, Exposure, Platform
from tests.targets.support import on_platform, service

KIND = {"tfserving:target": "kind", "tfserving:clusterName": "lab"}
CHART = "kubernetes:helm.sh/v4:Chart"


def on_kind(
    use: Callable[[Platform], Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return on_platform(use, KIND)


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
        exposure = Exposure(service(platform), "models", ServiceType.NODE_PORT, urls, "fwd")
        return platform.expose(exposure)

    records, found = on_kind(use)
    (svc,) = [r["state"]["metadata"]["name"] for r in records if r["name"] == "svc"]
    kubectl = "kubectl --context kind-lab -n models"
    port = f"$({kubectl} get svc {svc} -o jsonpath='{{.spec.ports[?(@.name==\"http\")].nodePort}}')"
    assert found == {
        "fwd": f"{kubectl} port-forward svc/{svc} 8501:8501",
        "predictUrlCommand": f'echo "http://127.0.0.1:{port}/v1/models/m:predict"',
    }
