"""Target eks as the program uses it: capacity checked first, the cluster with its region and GPU
pool, one ECR repository per image, S3 access for the model server, NLB hostnames as outputs."""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime.sync_await import _sync_await

from components.container_image import ImageBuild
from config.errors import SettingsError
from config.model import ModelSettings
from config.service import ServiceSettings, ServiceType
from targets import Endpoint, Exposure, Platform
from targets.base import url
from targets.capacity import InstanceSpec
from targets.eks import (
    DEREGISTRATION_SECONDS,
    auto_mode_nlb,
    cloud_provider_nlb,
    instance_spec,
    load_balancer_hostname,
)
from tests.targets.support import on_platform, service
from tools.render import run_under_mocks

ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"
LB = "service.beta.kubernetes.io/aws-load-balancer-"
ACCOUNT = "123456789012"
GPU_SERVER = {"gpu": 1, "image": "tensorflow/serving:2.20.0-gpu"}
AUTO = {"compute": "autoMode"}
URLS = {
    "predictUrl": Endpoint("http", 8501, "/v1/models/m:predict", "https"),
    "grpc": Endpoint("grpc", 8500, scheme=""),
}


def on_eks(
    use: Callable[[Platform], Mapping[str, Any]],
    config: dict[str, Any] | None = None,
    region: str | None = "eu-west-1",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run `use(platform)` for an eks stack under the mock runtime; resources and outputs."""
    region_key = {"aws:region": region} if region else {}
    return on_platform(use, {"tfserving:target": "eks", **region_key, **(config or {})})


def one(records: list[dict[str, Any]], type_: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in records if r["type"] == type_ and (name is None or r["name"] == name)]
    assert len(found) == 1, (type_, name, len(found))
    return found[0]


def of(records: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == type_]


def test_the_cluster_its_outputs_and_what_objects_wait_for():
    def use(platform: Platform) -> dict[str, Any]:
        return {
            "outputs": dict(platform.outputs),
            "region": platform.region,
            "provider": platform.provider.urn,
            "depends_on": [r.urn for r in platform.depends_on],
            "node_groups_nlb": platform.load_balancer is cloud_provider_nlb,
        }

    records, found = on_eks(use)
    prefix = "urn:pulumi:test::tfserving::tfserving:index:EksCluster$"
    assert found["outputs"]["clusterName"] == "tfserving-test"
    assert found["outputs"]["kubeconfigCommand"] == (
        "aws eks update-kubeconfig --region eu-west-1 --name tfserving-test"
    )
    assert (
        json.loads(found["outputs"]["kubeconfig"])["users"][0]["user"]["exec"]["args"][3]
        == "tfserving-test"
    )
    assert found["region"] == "eu-west-1"
    assert found["provider"] == f"{prefix}pulumi:providers:kubernetes::tfserving-k8s"
    assert found["depends_on"] == [
        f"{prefix}eks:index:ManagedNodeGroup::tfserving-cpu",
        f"{prefix}eks:index:Addon::tfserving-metrics-server",
        f"{prefix}eks:index:Addon::tfserving-pod-identity-agent",
        f"{prefix}tfserving:index:ClusterAutoscaler::tfserving-cluster-autoscaler",
    ]
    assert found["node_groups_nlb"] is True
    assert one(records, "tfserving:index:EksCluster")["name"] == "tfserving"
    assert one(records, "eks:index:Cluster")["inputs"]["name"] == "tfserving-test"
    chart = one(records, "kubernetes:helm.sh/v4:Chart", "tfserving-cluster-autoscaler-chart")
    assert chart["inputs"]["values"]["awsRegion"] == "eu-west-1"
    assert of(records, "kubernetes:karpenter.sh/v1:NodePool") == []


def test_without_a_region_the_cli_default_applies():
    def use(platform: Platform) -> dict[str, Any]:
        return {"command": platform.outputs["kubeconfigCommand"], "region": platform.region}

    records, found = on_eks(use, region=None)
    assert found == {"command": "aws eks update-kubeconfig --name tfserving-test", "region": None}
    chart = one(records, "kubernetes:helm.sh/v4:Chart", "tfserving-cluster-autoscaler-chart")
    assert "awsRegion" not in chart["inputs"]["values"]


def test_auto_mode_gets_a_gpu_pool_when_the_server_asks_for_gpus():
    def use(platform: Platform) -> dict[str, Any]:
        return {"auto_nlb": platform.load_balancer is auto_mode_nlb}

    records, found = on_eks(use, {"tfserving:cluster": AUTO, "tfserving:server": GPU_SERVER})
    assert found == {"auto_nlb": True}
    pool = one(records, "kubernetes:karpenter.sh/v1:NodePool")
    assert pool["inputs"]["spec"]["limits"] == {"nvidia.com/gpu": "4"}  # the default pool
    given = {**AUTO, "gpuNodePool": {"maxGpus": 2}}
    records, _ = on_eks(lambda p: {}, {"tfserving:cluster": given, "tfserving:server": GPU_SERVER})
    assert one(records, "kubernetes:karpenter.sh/v1:NodePool")["inputs"]["spec"]["limits"] == {
        "nvidia.com/gpu": "2"
    }
    records, _ = on_eks(lambda p: {}, {"tfserving:cluster": AUTO})
    assert of(records, "kubernetes:karpenter.sh/v1:NodePool") == []
    gpu_groups = {
        "nodeGroups": [
            {"name": "cpu"},
            {"name": "gpu", "gpu": True, "instanceTypes": ["g5.xlarge"], "minSize": 0},
        ]
    }
    records, _ = on_eks(
        lambda p: {}, {"tfserving:cluster": gpu_groups, "tfserving:server": GPU_SERVER}
    )
    assert of(records, "kubernetes:karpenter.sh/v1:NodePool") == []


def test_pods_that_fit_no_node_stop_the_program_before_any_resource():
    big = {
        "resources": {
            "requests": {"cpu": "1900m", "memory": "1Gi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        }
    }
    with pytest.raises(SettingsError) as caught:
        on_eks(lambda p: {}, {"tfserving:server": big})
    assert caught.value.problems == [
        "tfserving:autoscaling.maxReplicas x tfserving:server.resources.requests: one pod (1900m "
        "CPU, 1024Mi) fits on no node of tfserving:cluster.nodeGroups[0] (4 x m5.large); ask for "
        "less or choose bigger instance types"
    ]


def test_an_image_gets_its_own_repository_and_is_pushed_with_a_token(tmp_path: Path):
    build = ImageBuild(context=tmp_path, dockerfile_inline="FROM busybox:1.36\n")

    def use(platform: Platform) -> dict[str, Any]:
        image = platform.build_image("tfserving-model", build)
        return {"ref": image.ref, "repository": image.repository, "tag": image.tag}

    keep = {"tfserving:registry": {"keepImages": 3, "forceDelete": False}}
    records, found = on_eks(use, keep)
    repository = one(records, "aws:ecr/repository:Repository", "tfserving-model")
    assert repository["inputs"]["forceDelete"] is False
    assert (
        json.loads(one(records, "aws:ecr/lifecyclePolicy:LifecyclePolicy")["inputs"]["policy"])[
            "rules"
        ][0]["selection"]["countNumber"]
        == 3
    )
    url_ = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{repository['state']['name']}"
    assert found["repository"] == url_
    assert found["ref"].startswith(f"{url_}:{found['tag']}@sha256:")
    image = one(records, "docker-build:index:Image", "tfserving-model")
    assert image["inputs"]["push"] is True
    (login,) = image["inputs"]["registries"]["value"]
    assert login == {
        "address": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
        "username": "AWS",
        "password": "mock-ecr-token",
    }


def test_s3_models_get_a_pod_identity_role_that_waits_for_the_agent():
    models = [
        {"name": "a", "source": "s3", "uri": "s3://bucket/models/a", "sizeLimit": "1Gi"},
        {"name": "g", "source": "gcs", "uri": "gs://bucket/models/g"},
    ]
    made: list[Any] = []

    def use(platform: Platform) -> dict[str, Any]:
        assert platform.grant_model_access is not None
        settings = [ModelSettings.model_validate(m) for m in models]
        made.extend(platform.grant_model_access(settings))
        return {
            "granted": [r.urn for r in made],
            "nothing": platform.grant_model_access(settings[1:]),
        }

    records, found = on_eks(use, {"tfserving:namespace": "models"})
    component = one(records, "tfserving:index:ModelAccess", "tfserving-models")
    assert found == {"granted": [component["urn"]], "nothing": []}
    association = one(
        records,
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "tfserving-models-pod-identity",
    )
    assert association["inputs"]["clusterName"] == "tfserving-test"
    assert association["inputs"]["namespace"] == "models"
    assert association["inputs"]["serviceAccount"] == "tfserving-model-server"
    policy = json.loads(
        one(records, "aws:iam/rolePolicy:RolePolicy", "tfserving-models-read")["inputs"]["policy"]
    )
    assert [s["Resource"] for s in policy["Statement"]] == [
        "arn:aws:s3:::bucket",
        "arn:aws:s3:::bucket/models/a/*",
    ]
    agent = one(records, "eks:index:Addon", "tfserving-pod-identity-agent")["urn"]
    groups = one(records, "eks:index:ManagedNodeGroup")["urn"]
    assert {agent, groups} <= set(association["dependencies"])


def test_a_load_balancer_service_is_reached_at_its_hostname():
    def use(platform: Platform) -> dict[str, Any]:
        lb = Exposure(
            service(platform, "LoadBalancer"),
            "models",
            ServiceType.LOAD_BALANCER,
            URLS,
            "fwd",
            "host",
        )
        return platform.expose(lb)

    records, found = on_eks(use)
    host = one(records, "kubernetes:core/v1:Service")["state"]["status"]["loadBalancer"]["ingress"][
        0
    ]["hostname"]
    assert host.endswith(".elb.eu-west-1.amazonaws.com")
    assert found == {
        "predictUrl": f"https://{host}:8501/v1/models/m:predict",
        "grpc": f"{host}:8500",
        "host": host,
    }

    def unnamed(platform: Platform) -> dict[str, Any]:
        return platform.expose(
            Exposure(
                service(platform, "LoadBalancer"), "ns", ServiceType.LOAD_BALANCER, URLS, "fwd"
            )
        )

    assert set(on_eks(unnamed)[1]) == {"predictUrl", "grpc"}

    def inside(platform: Platform) -> dict[str, Any]:
        return platform.expose(
            Exposure(service(platform, "ClusterIP"), "ns", ServiceType.CLUSTER_IP, URLS, "fwd", "h")
        )

    assert on_eks(inside)[1] == {}


def test_the_hostname_or_the_address_of_a_load_balancer():
    outputs = k8s.core.v1.outputs

    def status(*ingress: Any) -> Any:
        return outputs.ServiceStatus(
            load_balancer=outputs.LoadBalancerStatus(ingress=list(ingress))
        )

    assert (
        load_balancer_hostname(status(outputs.LoadBalancerIngress(hostname="lb.example")))
        == "lb.example"
    )
    assert (
        load_balancer_hostname(status(outputs.LoadBalancerIngress(ip="192.0.2.1"))) == "192.0.2.1"
    )
    second = outputs.LoadBalancerIngress(hostname="second.example")
    assert (
        load_balancer_hostname(
            status(outputs.LoadBalancerIngress(hostname="first.example"), second)
        )
        == "first.example"
    )
    assert (
        load_balancer_hostname(status(outputs.LoadBalancerIngress(ip="192.0.2.1"), second))
        == "192.0.2.1"
    )
    both = outputs.LoadBalancerIngress(hostname="lb.example", ip="192.0.2.1")
    assert load_balancer_hostname(status(both)) == "lb.example"
    for empty in (None, outputs.ServiceStatus(), status(), status(outputs.LoadBalancerIngress())):
        with pytest.raises(ValueError, match=NO_ADDRESS):
            load_balancer_hostname(empty)
    with pytest.raises(ValueError, match=NO_ADDRESS):
        load_balancer_hostname(status(outputs.LoadBalancerIngress(), second))


def _service(**data: Any) -> ServiceSettings:
    return ServiceSettings.model_validate({"type": "LoadBalancer", **data})


NO_ADDRESS = r"^the LoadBalancer Service has no address$"
PUBLIC = {"scheme": "internet-facing", "allowedSourceRanges": ["203.0.113.0/24"]}


def test_node_groups_use_the_cloud_providers_nlb():
    internal = cloud_provider_nlb(_service(), [])
    assert internal.annotations == {f"{LB}type": "nlb", f"{LB}internal": "true"}
    assert (
        internal.load_balancer_class,
        internal.default_source_ranges,
        internal.deregistration_seconds,
    ) == (
        None,
        ("10.0.0.0/16",),
        0,
    )
    public = cloud_provider_nlb(_service(**PUBLIC, tls={"certificateArn": ARN}), ["http", "grpc"])
    assert public.annotations == {
        f"{LB}type": "nlb",
        f"{LB}ssl-cert": ARN,
        f"{LB}ssl-ports": "http,grpc",
    }
    assert public.default_source_ranges == ()


def test_auto_mode_uses_its_own_nlb_with_pod_targets_that_drain():
    internal = auto_mode_nlb(_service(), [])
    assert internal.annotations == {
        f"{LB}scheme": "internal",
        f"{LB}nlb-target-type": "ip",
        f"{LB}target-group-attributes": "deregistration_delay.timeout_seconds=20",
    }
    assert internal.load_balancer_class == "eks.amazonaws.com/nlb"
    assert internal.default_source_ranges == ("10.0.0.0/16",)
    assert internal.deregistration_seconds == DEREGISTRATION_SECONDS == 20
    public = auto_mode_nlb(_service(**PUBLIC, tls={"certificateArn": ARN}), ["http", "grpc"])
    assert public.annotations == {
        f"{LB}scheme": "internet-facing",
        f"{LB}nlb-target-type": "ip",
        f"{LB}target-group-attributes": "deregistration_delay.timeout_seconds=20",
        f"{LB}ssl-cert": ARN,
        f"{LB}ssl-ports": "http,grpc",
        f"{LB}alpn-policy": "HTTP2Optional",
    }
    assert public.default_source_ranges == ()


def test_instance_specs_come_from_the_providers_data_source():
    found: dict[str, InstanceSpec] = {}

    def program() -> None:
        found["g5"] = instance_spec("g5.12xlarge")
        found["m5"] = instance_spec("m5.large")

    run_under_mocks("test", {}, program)
    assert found == {
        "g5": InstanceSpec(48, 196608, 4, 8, 30),
        "m5": InstanceSpec(2, 8192, 0, 3, 10),
    }


def test_a_url_is_scheme_host_port_and_path_or_host_and_port():
    found: dict[str, Any] = {}

    def program() -> None:
        both = pulumi.Output.all(
            url(Endpoint("http", 1, "/p", "https"), "h", 8443),
            url(Endpoint("grpc", 1, scheme=""), "h", 8500),
        )
        found["urls"] = _sync_await(both.future())

    run_under_mocks("test", {}, program)
    assert found["urls"] == ["https://h:8443/p", "h:8500"]
