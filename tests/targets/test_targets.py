"""Targets: the eks platform wires every Kubernetes object to the cluster; endpoints; minikube."""

import pytest

from tests.conftest import PROJECT_ROOT, one, one_resource, resources_of
from tools.render import Rendered, render_stack

SERVICE = "tfserving:service"


@pytest.fixture(scope="module")
def eks() -> Rendered:
    return render_stack(PROJECT_ROOT / "Pulumi.eks.yaml")


def _kubernetes_resources(rendered: Rendered) -> list[dict]:
    return [
        r
        for r in rendered.resources
        if r["type"].startswith("kubernetes:")
        and r["custom"]
        and "ClusterAutoscaler" not in r["parent"]
        and "helm.sh" not in r["type"]
    ]


def test_every_kubernetes_object_uses_the_eks_provider_and_waits_for_the_nodes(eks):
    provider = one_resource(eks, "pulumi:providers:kubernetes")
    waits_for = {r["urn"] for r in resources_of(eks, "eks:index:ManagedNodeGroup")}
    waits_for.add(one_resource(eks, "eks:index:Addon", "tfserving-metrics-server")["urn"])
    autoscaler = "tfserving-cluster-autoscaler-chart"
    waits_for.add(one_resource(eks, "kubernetes:helm.sh/v4:Chart", autoscaler)["urn"])
    objects = _kubernetes_resources(eks)
    assert len(objects) == len(eks.kubernetes_objects) >= 7
    for obj in objects:
        assert obj["provider"].split("::")[:-1] == provider["urn"].split("::"), obj["name"]
        # Destroy then deletes the object (and a Service's load balancer) before nodes go.
        assert waits_for <= set(obj["dependencies"]), obj["name"]


def test_every_node_group_is_waited_for(render_eks):
    groups = [
        {"name": "a", "instanceTypes": ["m5.large"]},
        {"name": "b", "instanceTypes": ["c5.large"]},
    ]
    rendered = render_eks({"tfserving:cluster": {"nodeGroups": groups}})
    urns = {r["urn"] for r in resources_of(rendered, "eks:index:ManagedNodeGroup")}
    assert len(urns) == 2
    for obj in _kubernetes_resources(rendered):
        assert urns <= set(obj["dependencies"]), obj["name"]


def test_no_object_is_deleted_with_the_cluster():
    # deleted_with would skip deleting a Service, orphaning its AWS load balancer and the VPC.
    sources = [*(PROJECT_ROOT / "components").glob("*.py"), PROJECT_ROOT / "__main__.py"]
    for source in sources:
        assert "deleted_with" not in source.read_text(), source.name


def test_load_balancer_service_is_an_nlb_limited_to_the_allowed_ranges(render_eks):
    ranges = ["203.0.113.0/24", "198.51.100.7/32"]
    rendered = render_eks({SERVICE: {"allowedSourceRanges": ranges}})
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "LoadBalancer"
    # internet-facing (the eks stack says so): no `internal` annotation, the cloud provider's NLB
    assert service["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"
    }
    assert "loadBalancerClass" not in service["spec"]
    assert service["spec"]["loadBalancerSourceRanges"] == ranges
    # Not open to the whole internet: both ports on the load balancer.
    assert [p["port"] for p in service["spec"]["ports"]] == [8501, 8500]
    headless = one(rendered, "Service", "tfserving-grpc-")
    assert "annotations" not in headless["metadata"], "no load balancer for the headless Service"


def test_endpoints_point_at_the_load_balancer(eks):
    (service,) = [
        r
        for r in resources_of(eks, "kubernetes:core/v1:Service")
        if r["name"] == "tfserving-server"
    ]
    assert "status" not in one(eks, "Service", "tfserving-server-"), "desired state only"
    outputs = eks.outputs
    host = outputs["loadBalancerHostname"]
    assert host.startswith("tfserving-server-") and host.endswith(".elb.us-east-1.amazonaws.com")
    assert service["inputs"]["spec"]["type"] == "LoadBalancer"
    assert outputs["predictUrl"] == f"http://{host}:8501/v1/models/half_plus_two:predict"
    assert outputs["restUrl"] == f"http://{host}:8501/v1/models/half_plus_two"
    # Open to 0.0.0.0/0: REST only, TF Serving's gRPC (model management) stays in the cluster.
    assert "grpcExternalAddress" not in outputs
    assert outputs["grpcAddress"].startswith("dns:///"), "the in-cluster address stays"
    assert outputs["clusterName"] == "tfserving-eks"
    assert outputs["kubeconfigCommand"] == (
        "aws eks update-kubeconfig --region us-east-1 --name tfserving-eks"
    )
    assert '"get-token"' in outputs["kubeconfig"]
    assert outputs["target"] == "eks"


def test_cluster_ip_service_has_no_load_balancer_outputs(render_eks):
    rendered = render_eks(
        {SERVICE: {"type": "ClusterIP", "allowedSourceRanges": None, "scheme": None}}
    )
    service = one(rendered, "Service", "tfserving-server-")
    assert service["spec"]["type"] == "ClusterIP"
    assert "annotations" not in service["metadata"]
    assert "loadBalancerSourceRanges" not in service["spec"]
    for key in ("loadBalancerHostname", "predictUrl", "restUrl", "grpcExternalAddress"):
        assert key not in rendered.outputs
    assert rendered.outputs["clusterName"] == "tfserving-eks"


def test_minikube_builds_no_cloud_resources():
    rendered = render_stack(PROJECT_ROOT / "Pulumi.dev.yaml")
    types = {r["type"] for r in rendered.resources}
    assert not {t for t in types if t.startswith(("aws:", "awsx:", "eks:", "docker-build:"))}
    provider = one_resource(rendered, "pulumi:providers:kubernetes")
    assert provider["inputs"] == {"context": "minikube"}
    assert "clusterName" not in rendered.outputs
