"""The policy pack: the stack renders pass, each crafted violation fails with a clear message."""

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from config.paths import PROJECT_ROOT
from policy import exposure, resources, rules, workloads
from tests.policy.support import (
    assert_one,
    deployment,
    messages,
)
from tools.render import render_stack

STACK_FILES = sorted(PROJECT_ROOT.glob("Pulumi.*.yaml"))
DIGEST = "sha256:" + "ab" * 32


@functools.cache
def rendered(stack_file: Path) -> Any:
    return render_stack(stack_file)


@pytest.fixture(scope="module", params=STACK_FILES, ids=lambda p: p.name)
def render(request: pytest.FixtureRequest) -> Any:
    return rendered(request.param)


def test_there_is_a_stack_to_check() -> None:
    assert any(p.name == "Pulumi.dev.yaml" for p in STACK_FILES)


def stack_of(render: Any) -> list[resources.StackResource]:
    return [(r["type"], r["inputs"], r["name"]) for r in render.resources]


def test_every_rendered_resource_passes_every_rule(render: Any) -> None:
    found = {
        f"{r['type']} {r['name']}": rules.violations(r["type"], r["inputs"], r["name"])
        for r in render.resources
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_every_render_passes_every_stack_rule(render: Any) -> None:
    resources = stack_of(render)
    assert {rule.name: rule.check(resources) for rule in rules.STACK_RULES} == {
        rule.name: [] for rule in rules.STACK_RULES
    }
    assert rules.stack_violations(resources) == []


def test_the_rules_had_something_to_check_in_each_render(render: Any) -> None:
    # A render without the workload would pass vacuously: make sure the checked kinds are there.
    types = {r["type"] for r in render.resources}
    assert resources.DEPLOYMENT in types
    assert types & resources.HPA_TYPES
    assert resources.SERVICE in types
    assert {resources.NAMESPACE, resources.NETWORK_POLICY} <= types
    if render.stack == "eks":
        assert {resources.ECR_REPOSITORY, resources.EKS_CLUSTER} <= types


# --- crafted violations ---------------------------------------------------------------------


def test_the_crafted_deployment_is_compliant() -> None:
    assert messages(resources.DEPLOYMENT, deployment()) == []


@pytest.mark.parametrize(
    ("section", "resource"),
    [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")],
)
def test_missing_request_or_limit(section: str, resource: str) -> None:
    d = deployment()
    del d["spec"]["template"]["spec"]["containers"][0]["resources"][section][resource]
    assert_one(
        messages(resources.DEPLOYMENT, d),
        "container-resources",
        "kubernetes:apps/v1:Deployment 'web'",
        "container 'app'",
        f"no {section}.{resource}",
    )


def test_init_containers_need_resources_too() -> None:
    d = deployment()
    init = {"name": "fetch", "image": "busybox:1.37", "securityContext": {"runAsUser": 1000}}
    d["spec"]["template"]["spec"]["initContainers"] = [init]
    assert_one(
        messages(resources.DEPLOYMENT, d),
        "container-resources",
        "initContainer 'fetch'",
        "no requests.cpu, requests.memory, limits.cpu, limits.memory",
    )


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("tensorflow/serving:latest", "uses :latest"),
        ("tensorflow/serving", "untagged"),
        ("registry.local:5000/serving", "untagged"),
        ("tensorflow/serving@sha256:abc", "malformed digest"),
    ],
)
def test_unpinned_images(image: str, why: str) -> None:
    assert_one(
        messages(resources.DEPLOYMENT, deployment(image=image)),
        "image-pinned",
        f"image '{image}'",
        why,
    )


@pytest.mark.parametrize(
    "image",
    [
        "tensorflow/serving:2.19.1",
        "registry.local:5000/serving:1.0",
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/tfserving@{DIGEST}",
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/tfserving:abc123@{DIGEST}",
    ],
)
def test_pinned_images_pass(image: str) -> None:
    assert workloads.check_image_pinned(resources.DEPLOYMENT, deployment(image=image), "web") == []


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "why"),
    [
        (None, None, "neither runAsNonRoot"),
        ({"runAsNonRoot": False}, None, "neither runAsNonRoot"),
        ({"runAsNonRoot": True}, {"runAsUser": 0}, "runAsUser is 0"),
        ({"runAsUser": 1000}, {"runAsUser": 0}, "runAsUser is 0"),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "neither runAsNonRoot"),
    ],
)
def test_root_containers(pod_sc: Any, container_sc: Any, why: str) -> None:
    d = deployment(securityContext=container_sc)
    if pod_sc is not None:
        d["spec"]["template"]["spec"]["securityContext"] = pod_sc
    assert_one(messages(resources.DEPLOYMENT, d), "run-as-non-root", "container 'app'", why)


@pytest.mark.parametrize(
    ("pod_sc", "container_sc"),
    [({"runAsNonRoot": True}, None), ({"runAsUser": 1000}, None), (None, {"runAsUser": 65534})],
)
def test_non_root_from_pod_or_container(pod_sc: Any, container_sc: Any) -> None:
    d = deployment(securityContext=container_sc)
    if pod_sc is not None:
        d["spec"]["template"]["spec"]["securityContext"] = pod_sc
    assert workloads.check_run_as_non_root(resources.DEPLOYMENT, d, "web") == []


def test_pods_and_cronjobs_are_checked_like_deployments() -> None:
    bad = {"name": "c", "image": "busybox", "securityContext": {"runAsUser": 1}}
    pod = {"spec": {"containers": [bad]}}
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [bad]}}}}}}
    for type_, props in (("kubernetes:core/v1:Pod", pod), ("kubernetes:batch/v1:CronJob", cron)):
        found = messages(type_, props)
        assert {m.split(":", 1)[0] for m in found} == {"container-resources", "image-pinned"}


def test_deployment_without_readiness_probe() -> None:
    d = deployment()
    del d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert_one(
        messages(resources.DEPLOYMENT, d), "readiness-probe", "Deployment 'web'", "container 'app'"
    )


def hpa(spec: dict[str, Any], version: str = "v2") -> tuple[str, dict[str, Any]]:
    return f"kubernetes:autoscaling/{version}:HorizontalPodAutoscaler", {"spec": spec}


CPU_METRIC = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
}


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"minReplicas": 3, "maxReplicas": 2, "metrics": [CPU_METRIC]}, "minReplicas (3)"),
        ({"minReplicas": 0, "maxReplicas": 2, "metrics": [CPU_METRIC]}, "minReplicas (0)"),
        ({"minReplicas": 1, "metrics": [CPU_METRIC]}, "no maxReplicas"),
        ({"minReplicas": 1, "maxReplicas": 3}, "no CPU target"),
        (
            {
                "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {}}}],
            },
            "no CPU target",
        ),
    ],
)
def test_bad_hpas(spec: dict[str, Any], why: str) -> None:
    type_, props = hpa(spec)
    assert_one(messages(type_, props, "scale"), "hpa", f"{type_} 'scale'", why)


def test_good_hpas() -> None:
    ok_v2 = hpa({"maxReplicas": 4, "metrics": [CPU_METRIC]})
    ok_v1 = hpa({"maxReplicas": 4, "targetCPUUtilizationPercentage": 50}, "v1")
    assert workloads.check_hpa(*ok_v2, "a") == []
    assert workloads.check_hpa(*ok_v1, "b") == []


def service(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"ports": [{"port": 8501}], **spec}}


def test_load_balancer_without_source_ranges() -> None:
    assert_one(
        messages(resources.SERVICE, service({"type": "LoadBalancer"}), "tfserving"),
        "loadbalancer-source-ranges",
        "kubernetes:core/v1:Service 'tfserving'",
        "without loadBalancerSourceRanges",
    )
    bad_cidr = service({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]})
    assert_one(messages(resources.SERVICE, bad_cidr), "loadbalancer-source-ranges", "not a CIDR")


def test_services_that_pass() -> None:
    for spec in (
        {"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]},
        {"type": "NodePort"},
        {"clusterIP": "None"},
    ):
        assert (
            exposure.check_load_balancer_source_ranges(resources.SERVICE, service(spec), "s") == []
        )


def test_ecr_repository() -> None:
    good = {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE"}
    assert messages(resources.ECR_REPOSITORY, good) == []
    no_scan = {**good, "imageScanningConfiguration": {"scanOnPush": False}}
    assert_one(
        messages(resources.ECR_REPOSITORY, no_scan, "models"), "ecr-repository", "scanOnPush"
    )
    mutable = {k: v for k, v in good.items() if k != "imageTagMutability"}
    assert_one(messages(resources.ECR_REPOSITORY, mutable), "ecr-repository", "MUTABLE (default)")


def test_eks_cluster_nodes_must_not_get_public_ips() -> None:
    good = {
        "nodeAssociatePublicIpAddress": False,
        "publicSubnetIds": ["a"],
        "privateSubnetIds": ["b"],
    }
    assert messages(resources.EKS_CLUSTER, good) == []
    for bad in ({**good, "nodeAssociatePublicIpAddress": True}, {"privateSubnetIds": ["b"]}):
        assert_one(
            messages(resources.EKS_CLUSTER, bad, "cluster"),
            "eks-private-nodes",
            "eks:index:Cluster 'cluster'",
            "nodeAssociatePublicIpAddress must be false",
        )
    public_only = {"nodeAssociatePublicIpAddress": False, "publicSubnetIds": ["a"]}
    assert_one(messages(resources.EKS_CLUSTER, public_only), "eks-private-nodes", "public subnets")


def test_managed_node_groups_name_their_subnets() -> None:
    assert messages(resources.EKS_MANAGED_NODE_GROUP, {"subnetIds": ["subnet-1"]}) == []
    assert_one(
        messages(resources.EKS_MANAGED_NODE_GROUP, {"instanceTypes": ["m5.large"]}, "cpu"),
        "eks-private-nodes",
        "eks:index:ManagedNodeGroup 'cpu'",
        "no subnetIds",
    )


def test_launch_templates_do_not_ask_for_public_ips() -> None:
    nic = {"associatePublicIpAddress": "true"}
    assert_one(
        messages(resources.LAUNCH_TEMPLATE, {"networkInterfaces": [nic]}, "nodes"),
        "eks-private-nodes",
        "networkInterfaces[0].associatePublicIpAddress",
    )
    private = {"networkInterfaces": [{"associatePublicIpAddress": "false"}]}
    assert messages(resources.LAUNCH_TEMPLATE, private) == []


def test_a_rendered_deployment_broken_in_four_ways_fails_four_rules() -> None:
    original = next(
        r
        for r in rendered(PROJECT_ROOT / "Pulumi.dev.yaml").resources
        if r["type"] == resources.DEPLOYMENT
    )
    props = copy.deepcopy(original["inputs"])
    container = props["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "tensorflow/serving:latest"
    del container["resources"]["limits"]
    del container["readinessProbe"]
    container["securityContext"]["runAsUser"] = 0
    found = rules.violations(resources.DEPLOYMENT, props, original["name"])
    assert sorted(m.split(":", 1)[0] for m in found) == [
        "container-resources",
        "image-pinned",
        "readiness-probe",
        "run-as-non-root",
    ]
    assert all(f"Deployment '{original['name']}'" in m for m in found)
