"""The policy pack: the stack renders pass, each crafted violation fails with a clear message."""

import copy
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from config.paths import PROJECT_ROOT
from policy import rules
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


def stack_of(render: Any) -> list[rules.StackResource]:
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
    assert rules.DEPLOYMENT in types
    assert types & rules.HPA_TYPES
    assert rules.SERVICE in types
    assert {rules.NAMESPACE, rules.NETWORK_POLICY} <= types
    if render.stack == "eks":
        assert {rules.ECR_REPOSITORY, rules.EKS_CLUSTER} <= types


# --- crafted violations ---------------------------------------------------------------------


def deployment(**container_overrides: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": "tensorflow/serving:2.19.1",
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "readinessProbe": {"httpGet": {"path": "/v1/models/m", "port": 8501}},
        "securityContext": {"runAsNonRoot": True},
    }
    container.update(container_overrides)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def messages(resource_type: str, props: dict[str, Any], name: str = "web") -> list[str]:
    return rules.violations(resource_type, props, name)


def assert_one(found: list[str], rule: str, *fragments: str) -> None:
    assert len(found) == 1, found
    assert found[0].startswith(f"{rule}: ")
    for fragment in fragments:
        assert fragment in found[0], found[0]


def test_the_crafted_deployment_is_compliant() -> None:
    assert messages(rules.DEPLOYMENT, deployment()) == []


@pytest.mark.parametrize(
    ("section", "resource"),
    [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")],
)
def test_missing_request_or_limit(section: str, resource: str) -> None:
    d = deployment()
    del d["spec"]["template"]["spec"]["containers"][0]["resources"][section][resource]
    assert_one(
        messages(rules.DEPLOYMENT, d),
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
        messages(rules.DEPLOYMENT, d),
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
        messages(rules.DEPLOYMENT, deployment(image=image)),
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
    assert rules.check_image_pinned(rules.DEPLOYMENT, deployment(image=image), "web") == []


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
    assert_one(messages(rules.DEPLOYMENT, d), "run-as-non-root", "container 'app'", why)


@pytest.mark.parametrize(
    ("pod_sc", "container_sc"),
    [({"runAsNonRoot": True}, None), ({"runAsUser": 1000}, None), (None, {"runAsUser": 65534})],
)
def test_non_root_from_pod_or_container(pod_sc: Any, container_sc: Any) -> None:
    d = deployment(securityContext=container_sc)
    if pod_sc is not None:
        d["spec"]["template"]["spec"]["securityContext"] = pod_sc
    assert rules.check_run_as_non_root(rules.DEPLOYMENT, d, "web") == []


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
        messages(rules.DEPLOYMENT, d), "readiness-probe", "Deployment 'web'", "container 'app'"
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
    assert rules.check_hpa(*ok_v2, "a") == []
    assert rules.check_hpa(*ok_v1, "b") == []


def service(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"ports": [{"port": 8501}], **spec}}


def test_load_balancer_without_source_ranges() -> None:
    assert_one(
        messages(rules.SERVICE, service({"type": "LoadBalancer"}), "tfserving"),
        "loadbalancer-source-ranges",
        "kubernetes:core/v1:Service 'tfserving'",
        "without loadBalancerSourceRanges",
    )
    bad_cidr = service({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]})
    assert_one(messages(rules.SERVICE, bad_cidr), "loadbalancer-source-ranges", "not a CIDR")


def test_services_that_pass() -> None:
    for spec in (
        {"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24"]},
        {"type": "NodePort"},
        {"clusterIP": "None"},
    ):
        assert rules.check_load_balancer_source_ranges(rules.SERVICE, service(spec), "s") == []


# --- tfserving-grpc-not-world-open -----------------------------------------------------------

REST = {"name": "http", "port": 8501, "targetPort": "http"}
GRPC = {"name": "grpc", "port": 8500, "targetPort": "grpc"}
ALLOW = {"tfserving.dev/allow-world-grpc": "true"}


def load_balancer(
    ports: list[dict[str, Any]], ranges: list[str] | None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "LoadBalancer", "ports": ports}
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    return {"metadata": {"annotations": annotations or {}}, "spec": spec}


def grpc_open(props: dict[str, Any]) -> list[str]:
    return rules.check_grpc_not_world_open(rules.SERVICE, props, "tfserving")


def world_grpc_message(ports: str, how: str) -> str:
    return (
        "tfserving-grpc-not-world-open: kubernetes:core/v1:Service 'tfserving': exposes TF "
        f"Serving's gRPC port {ports} to the whole internet: it {how}. The gRPC port serves "
        "ModelService (anyone can unload or replace the model): narrow the ranges, expose only "
        'the REST port, or acknowledge it (annotation tfserving.dev/allow-world-grpc: "true")'
    )


@pytest.mark.parametrize(
    ("ranges", "how"),
    [
        (["0.0.0.0/0"], "allows 0.0.0.0/0 in loadBalancerSourceRanges"),
        (["::/0"], "allows ::/0 in loadBalancerSourceRanges"),
        (["203.0.113.0/24", "10.1.2.3/0"], "allows 10.1.2.3/0 in loadBalancerSourceRanges"),
        (["0.0.0.0/0", "::/0"], "allows 0.0.0.0/0, ::/0 in loadBalancerSourceRanges"),
        (None, "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"),
        ([], "has no loadBalancerSourceRanges (Kubernetes then allows everyone)"),
    ],
)
def test_world_open_load_balancer_with_grpc(ranges: list[str] | None, how: str) -> None:
    assert grpc_open(load_balancer([REST, GRPC], ranges)) == [
        world_grpc_message("8500 (grpc)", how)
    ]


@pytest.mark.parametrize(
    ("port", "label"),
    [
        ({"port": 8500}, "8500"),  # by number, unnamed
        ({"port": 8500.0}, "8500"),  # numbers arrive as floats over the analyzer protocol
        ({"name": "grpc", "port": 443, "targetPort": 8500}, "443 (grpc)"),  # by name
        ({"name": "api", "port": 443, "targetPort": "grpc"}, "443 (api)"),  # by target name
        ({"name": "api", "port": 443, "targetPort": "8500"}, "443 (api)"),  # by target number
    ],
)
def test_the_grpc_port_is_found_by_number_or_name(port: dict[str, Any], label: str) -> None:
    found = grpc_open(load_balancer([port], ["0.0.0.0/0"]))
    assert found == [world_grpc_message(label, "allows 0.0.0.0/0 in loadBalancerSourceRanges")]


def test_every_exposed_grpc_port_is_named() -> None:
    both = load_balancer([GRPC, {"name": "grpc-tls", "port": 443, "targetPort": 8500}], None)
    assert grpc_open(both) == [
        world_grpc_message(
            "8500 (grpc), 443 (grpc-tls)",
            "has no loadBalancerSourceRanges (Kubernetes then allows everyone)",
        )
    ]


@pytest.mark.parametrize(
    "props",
    [
        load_balancer([REST], ["0.0.0.0/0"]),  # REST only may face the internet
        load_balancer([REST, GRPC], ["203.0.113.0/24", "2001:db8::/32"]),  # narrowed
        load_balancer([REST, GRPC], ["0.0.0.0/1", "128.0.0.0/1"]),  # halves: not a /0
        load_balancer([REST, GRPC], ["0.0.0.0/0"], ALLOW),  # acknowledged by the stack
        load_balancer([REST, GRPC], None, ALLOW),
        {"spec": {"type": "NodePort", "ports": [GRPC]}},  # not a load balancer
        {"spec": {"clusterIP": "None", "ports": [GRPC]}},
    ],
)
def test_load_balancers_that_keep_grpc_off_the_internet(props: dict[str, Any]) -> None:
    assert grpc_open(props) == []


@pytest.mark.parametrize("value", ["false", "True", "yes", ""])
def test_only_the_exact_acknowledgement_counts(value: str) -> None:
    props = load_balancer([GRPC], ["0.0.0.0/0"], {"tfserving.dev/allow-world-grpc": value})
    assert len(grpc_open(props)) == 1


def test_an_invalid_range_is_left_to_the_source_ranges_rule() -> None:
    found = messages(rules.SERVICE, load_balancer([GRPC], ["0.0.0.0/33"]))
    assert [m.split(":", 1)[0] for m in found] == ["loadbalancer-source-ranges"]


def test_a_world_open_grpc_load_balancer_fails_only_the_grpc_rule() -> None:
    found = messages(rules.SERVICE, load_balancer([REST, GRPC], ["0.0.0.0/0"]), "tfserving")
    assert found == [
        world_grpc_message("8500 (grpc)", "allows 0.0.0.0/0 in loadBalancerSourceRanges")
    ]


# --- namespace-pod-security -----------------------------------------------------------------

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def namespace(name: str | None = "tfserving", labels: dict[str, str] | None = None) -> Any:
    metadata: dict[str, Any] = {"labels": RESTRICTED if labels is None else labels}
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def test_a_restricted_namespace_passes() -> None:
    assert messages(rules.NAMESPACE, namespace()) == []
    versioned = {**RESTRICTED, "pod-security.kubernetes.io/enforce-version": "v1.34"}
    baseline_warn = {**RESTRICTED, "pod-security.kubernetes.io/warn": "baseline"}
    for labels in (versioned, baseline_warn):
        assert (
            rules.check_namespace_pod_security(rules.NAMESPACE, namespace(labels=labels), "n") == []
        )


def test_a_namespace_without_pod_security_labels() -> None:
    who = "namespace-pod-security: kubernetes:core/v1:Namespace 'tfserving-namespace'"
    assert messages(rules.NAMESPACE, namespace(labels={}), "tfserving-namespace") == [
        f"{who}: label pod-security.kubernetes.io/enforce is missing, must be restricted",
        f"{who}: label pod-security.kubernetes.io/warn is missing, must be privileged or "
        "baseline or restricted",
        f"{who}: label pod-security.kubernetes.io/audit is missing, must be privileged or "
        "baseline or restricted",
    ]
    no_metadata = {"apiVersion": "v1", "kind": "Namespace"}
    assert len(messages(rules.NAMESPACE, no_metadata)) == 3


@pytest.mark.parametrize(
    ("label", "value", "why"),
    [
        ("enforce", "baseline", "enforce is 'baseline', must be restricted"),
        ("enforce", "privileged", "enforce is 'privileged', must be restricted"),
        ("warn", "strict", "warn is 'strict', must be privileged or baseline or restricted"),
        ("audit", "", "audit is missing, must be privileged or baseline or restricted"),
    ],
)
def test_a_namespace_with_a_weak_or_invalid_level(label: str, value: str, why: str) -> None:
    labels = {**RESTRICTED, f"pod-security.kubernetes.io/{label}": value}
    assert messages(rules.NAMESPACE, namespace(labels=labels), "ns") == [
        f"namespace-pod-security: kubernetes:core/v1:Namespace 'ns': "
        f"label pod-security.kubernetes.io/{why}"
    ]


# --- network-policy-per-namespace (a stack rule) --------------------------------------------


def network_policy(namespace: str | None) -> dict[str, Any]:
    metadata = {} if namespace is None else {"namespace": namespace}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def no_policy_message(name: str, namespace: str) -> str:
    return (
        f"network-policy-per-namespace: kubernetes:core/v1:Namespace '{name}': no NetworkPolicy "
        f"in namespace '{namespace}' (every pod in the cluster can reach its pods; add at least "
        "a default-deny ingress policy)"
    )


def test_every_namespace_needs_a_network_policy_in_it() -> None:
    check = rules.check_network_policy_per_namespace
    ns = (rules.NAMESPACE, namespace("tfserving"), "tfserving-namespace")
    other = (rules.NAMESPACE, namespace("batch"), "batch-namespace")
    in_ns = (rules.NETWORK_POLICY, network_policy("tfserving"), "default-deny")
    assert check([ns, in_ns]) == []
    assert check([in_ns, ns]) == []  # order does not matter
    assert check([ns]) == [no_policy_message("tfserving-namespace", "tfserving")]
    assert check([ns, other, in_ns]) == [no_policy_message("batch-namespace", "batch")]
    elsewhere = (rules.NETWORK_POLICY, network_policy("batch"), "batch-deny")
    assert check([ns, elsewhere]) == [no_policy_message("tfserving-namespace", "tfserving")]


def test_a_network_policy_without_a_namespace_is_in_default() -> None:
    check = rules.check_network_policy_per_namespace
    unplaced = (rules.NETWORK_POLICY, network_policy(None), "deny")
    assert check([(rules.NAMESPACE, namespace("default"), "d"), unplaced]) == []
    assert check([(rules.NAMESPACE, namespace("tfserving"), "t"), unplaced]) == [
        no_policy_message("t", "tfserving")
    ]


def test_no_namespace_nothing_to_check_and_a_nameless_namespace_is_reported() -> None:
    check = rules.check_network_policy_per_namespace
    assert check([]) == []
    assert check([(rules.DEPLOYMENT, deployment(), "web")]) == []
    assert check([(rules.NAMESPACE, namespace(None), "ns")]) == [
        "network-policy-per-namespace: kubernetes:core/v1:Namespace 'ns': no metadata.name, so "
        "no NetworkPolicy can be matched to it"
    ]


def test_stack_violations_adds_the_stack_rules_to_each_resource_rule() -> None:
    ns = (rules.NAMESPACE, namespace("tfserving", labels={}), "tfserving-namespace")
    found = rules.stack_violations([ns])
    assert [m.split(":", 1)[0] for m in found] == [
        "namespace-pod-security",
        "namespace-pod-security",
        "namespace-pod-security",
        "network-policy-per-namespace",
    ]


def test_ecr_repository() -> None:
    good = {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE"}
    assert messages(rules.ECR_REPOSITORY, good) == []
    no_scan = {**good, "imageScanningConfiguration": {"scanOnPush": False}}
    assert_one(messages(rules.ECR_REPOSITORY, no_scan, "models"), "ecr-repository", "scanOnPush")
    mutable = {k: v for k, v in good.items() if k != "imageTagMutability"}
    assert_one(messages(rules.ECR_REPOSITORY, mutable), "ecr-repository", "MUTABLE (default)")


def test_eks_cluster_nodes_must_not_get_public_ips() -> None:
    good = {
        "nodeAssociatePublicIpAddress": False,
        "publicSubnetIds": ["a"],
        "privateSubnetIds": ["b"],
    }
    assert messages(rules.EKS_CLUSTER, good) == []
    for bad in ({**good, "nodeAssociatePublicIpAddress": True}, {"privateSubnetIds": ["b"]}):
        assert_one(
            messages(rules.EKS_CLUSTER, bad, "cluster"),
            "eks-private-nodes",
            "eks:index:Cluster 'cluster'",
            "nodeAssociatePublicIpAddress must be false",
        )
    public_only = {"nodeAssociatePublicIpAddress": False, "publicSubnetIds": ["a"]}
    assert_one(messages(rules.EKS_CLUSTER, public_only), "eks-private-nodes", "public subnets")


def test_managed_node_groups_name_their_subnets() -> None:
    assert messages(rules.EKS_MANAGED_NODE_GROUP, {"subnetIds": ["subnet-1"]}) == []
    assert_one(
        messages(rules.EKS_MANAGED_NODE_GROUP, {"instanceTypes": ["m5.large"]}, "cpu"),
        "eks-private-nodes",
        "eks:index:ManagedNodeGroup 'cpu'",
        "no subnetIds",
    )


def test_launch_templates_do_not_ask_for_public_ips() -> None:
    nic = {"associatePublicIpAddress": "true"}
    assert_one(
        messages(rules.LAUNCH_TEMPLATE, {"networkInterfaces": [nic]}, "nodes"),
        "eks-private-nodes",
        "networkInterfaces[0].associatePublicIpAddress",
    )
    private = {"networkInterfaces": [{"associatePublicIpAddress": "false"}]}
    assert messages(rules.LAUNCH_TEMPLATE, private) == []


def test_a_rendered_deployment_broken_in_four_ways_fails_four_rules() -> None:
    original = next(
        r
        for r in rendered(PROJECT_ROOT / "Pulumi.dev.yaml").resources
        if r["type"] == rules.DEPLOYMENT
    )
    props = copy.deepcopy(original["inputs"])
    container = props["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "tensorflow/serving:latest"
    del container["resources"]["limits"]
    del container["readinessProbe"]
    container["securityContext"]["runAsUser"] = 0
    found = rules.violations(rules.DEPLOYMENT, props, original["name"])
    assert sorted(m.split(":", 1)[0] for m in found) == [
        "container-resources",
        "image-pinned",
        "readiness-probe",
        "run-as-non-root",
    ]
    assert all(f"Deployment '{original['name']}'" in m for m in found)


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
    assert analyze(analyzer, rules.DEPLOYMENT, deployment()) == []
    found = analyze(analyzer, rules.DEPLOYMENT, deployment(image="tensorflow/serving:latest"))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("image-pinned", analyzer_pb2.MANDATORY)
    ]
    assert "uses :latest" in found[0].message


def test_unknown_values_during_preview_are_advisory_not_failures(analyzer: Any) -> None:
    # The engine's sentinel for a string not known before the update (e.g. a freshly built image).
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    found = analyze(analyzer, rules.DEPLOYMENT, deployment(image=unknown))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("image-pinned", analyzer_pb2.ADVISORY)
    ]
    assert "during preview" in found[0].message


def test_the_pack_runs_the_stack_rules_over_the_whole_stack(analyzer: Any) -> None:
    ns = (rules.NAMESPACE, namespace("tfserving"), "tfserving-namespace")
    policy = (rules.NETWORK_POLICY, network_policy("tfserving"), "default-deny")
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
    found = analyze_stack(analyzer, [(rules.NAMESPACE, namespace(unknown), "tfserving-namespace")])
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("network-policy-per-namespace", analyzer_pb2.ADVISORY)
    ]
    assert "during preview" in found[0].message


def test_the_pack_reports_a_world_open_grpc_port(analyzer: Any) -> None:
    found = analyze(analyzer, rules.SERVICE, load_balancer([REST, GRPC], ["0.0.0.0/0"]))
    assert [(d.policyName, d.enforcementLevel) for d in found] == [
        ("tfserving-grpc-not-world-open", analyzer_pb2.MANDATORY)
    ]
