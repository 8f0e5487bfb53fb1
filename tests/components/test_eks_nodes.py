"""Managed node groups that really scale: role, launch templates, Cluster Autoscaler, GPU plugin."""

import json
from typing import Any

import pytest

from components.cluster_autoscaler import CHART_VERSION, autoscaler_policy
from components.eks_nodes import DEVICE_PLUGIN_VERSION
from tests.conftest import PROJECT_ROOT, one_resource, resources_of
from tools.render import Rendered, render_stack

CLUSTER = "tfserving:cluster"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
CHART = "kubernetes:helm.sh/v4:Chart"
ADDON = "eks:index:Addon"
IMDS = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}


@pytest.fixture(scope="module")
def eks() -> Rendered:
    return render_stack(PROJECT_ROOT / "Pulumi.eks.yaml")


@pytest.fixture(scope="module")
def eks_gpu() -> Rendered:
    return render_stack(PROJECT_ROOT / "Pulumi.eks-gpu.yaml")


def _inputs(rendered: Rendered, type_: str, name: str | None = None) -> dict[str, Any]:
    return one_resource(rendered, type_, name)["inputs"]


def test_one_node_role_with_the_worker_and_ecr_pull_policies_only(eks):
    role = one_resource(eks, ROLE, "tfserving-nodes")
    (statement,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    attachments = [a for a in resources_of(eks, ATTACHMENT) if a["parent"] == role["urn"]]
    # No CNI policy (the VPC CNI has its own role) and pull-only ECR access.
    assert sorted(a["inputs"]["policyArn"] for a in attachments) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]
    for group in resources_of(eks, NODE_GROUP):
        # Nodes boot only once the role can pull images.
        assert {a["urn"] for a in attachments} <= set(group["dependencies"])
        assert role["urn"] in group["dependencies"]
        assert "nodeGroupName" not in group["inputs"], "auto-named: replacements can go first"


def test_cpu_groups_share_the_imdsv2_launch_template_they_always_had(eks):
    (template,) = resources_of(eks, LAUNCH_TEMPLATE)
    assert template["name"] == "tfserving-nodes"
    assert template["inputs"] == {"metadataOptions": IMDS}, "no root volume: the AMI's own"
    for group in resources_of(eks, NODE_GROUP):
        assert template["urn"] in group["dependencies"]
        assert group["inputs"]["launchTemplate"]["version"] == "1"
        assert "diskSize" not in group["inputs"], "conflicts with a launch template"


def test_node_groups_leave_desired_size_to_the_autoscaler(eks):
    (group,) = resources_of(eks, NODE_GROUP)
    inputs = group["inputs"]
    assert inputs["ignoreScalingChanges"] is True
    assert inputs["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 4}
    assert inputs["version"] == "1.35"
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["labels"] == {"tfserving/node-group": "cpu"}
    assert inputs["taints"] == []


def test_node_group_shape_follows_the_config(render_eks):
    group = {
        "name": "spot",
        "instanceTypes": ["m5.large", "m5a.large"],
        "minSize": 0,
        "desiredSize": 1,
        "maxSize": 3,
        "capacityType": "SPOT",
    }
    inputs = _inputs(render_eks({CLUSTER: {"nodeGroups": [group]}}), NODE_GROUP, "tfserving-spot")
    assert inputs["instanceTypes"] == ["m5.large", "m5a.large"]
    assert inputs["capacityType"] == "SPOT"
    assert inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 3}


def test_gpu_group_runs_the_nvidia_ami_tainted_labelled_on_a_big_root_volume(eks_gpu):
    gpu = _inputs(eks_gpu, NODE_GROUP, "tfserving-gpu")
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["instanceTypes"] == ["g4dn.xlarge"]
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu["labels"] == {"tfserving/node-group": "gpu", "nvidia.com/gpu.present": "true"}
    # Scales from zero: the autoscaler adds a node when a GPU pod is pending.
    assert gpu["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 2}
    template = one_resource(eks_gpu, LAUNCH_TEMPLATE, "tfserving-gpu-nodes")
    assert template["inputs"] == {
        "metadataOptions": IMDS,
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": 100, "volumeType": "gp3", "encrypted": "true"},
            }
        ],
    }
    assert template["urn"] in one_resource(eks_gpu, NODE_GROUP, "tfserving-gpu")["dependencies"]
    cpu = _inputs(eks_gpu, NODE_GROUP, "tfserving-cpu")
    assert cpu["amiType"] == "AL2023_x86_64_STANDARD" and cpu["taints"] == []
    shared = one_resource(eks_gpu, LAUNCH_TEMPLATE, "tfserving-nodes")
    assert shared["urn"] in one_resource(eks_gpu, NODE_GROUP, "tfserving-cpu")["dependencies"]


def test_gpu_groups_default_to_100_gib_and_disk_size_is_honoured(render_eks):
    groups = [
        {"name": "cpu", "instanceTypes": ["m5.large"], "diskSize": 50},
        {"name": "gpu", "instanceTypes": ["g5.xlarge"], "gpu": True, "minSize": 0,
         "desiredSize": 0, "maxSize": 1},
    ]  # fmt: skip
    rendered = render_eks(
        {
            CLUSTER: {"nodeGroups": groups},
            "tfserving:server": {"gpu": 1, "image": "tensorflow/serving:2.20.0-gpu"},
            "tfserving:autoscaling": {"maxReplicas": 1},
        }
    )
    sizes = {
        t["name"]: t["inputs"]["blockDeviceMappings"][0]["ebs"]["volumeSize"]
        for t in resources_of(rendered, LAUNCH_TEMPLATE)
        if "blockDeviceMappings" in t["inputs"]
    }
    assert sizes == {"tfserving-cpu-nodes": 50, "tfserving-gpu-nodes": 100}


def test_cluster_autoscaler_discovers_our_groups_with_a_pod_identity_role(eks):
    component = one_resource(eks, "tfserving:index:ClusterAutoscaler")
    chart = one_resource(eks, CHART, "tfserving-cluster-autoscaler-chart")
    assert chart["parent"] == component["urn"]
    inputs = chart["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "cluster-autoscaler",
        CHART_VERSION,
        "kube-system",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://kubernetes.github.io/autoscaler"}
    values = inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": "tfserving-eks"}
    assert values["awsRegion"] == "us-east-1"
    # The autoscaler's minor matches the cluster's Kubernetes minor (1.35).
    assert values["image"] == {"tag": "v1.35.2"}
    assert values["rbac"] == {"serviceAccount": {"create": True, "name": "cluster-autoscaler"}}
    assert values["extraArgs"]["balance-similar-node-groups"] is True
    association = _inputs(eks, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association["namespace"] == "kube-system"
    assert association["serviceAccount"] == "cluster-autoscaler"
    assert association["clusterName"] == "tfserving-eks"
    role = one_resource(eks, ROLE, "tfserving-cluster-autoscaler-role")
    (trust,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    policy = _inputs(eks, "aws:iam/rolePolicy:RolePolicy")
    assert policy["policy"] == autoscaler_policy("tfserving-eks")
    groups = {g["urn"] for g in resources_of(eks, NODE_GROUP)}
    agent = one_resource(eks, ADDON, "tfserving-pod-identity-agent")
    assert agent["inputs"]["addonName"] == "eks-pod-identity-agent"
    assert groups | {agent["urn"]} <= set(chart["dependencies"])


def test_autoscaler_may_resize_only_this_clusters_groups():
    statements = {s["Sid"]: s for s in json.loads(autoscaler_policy("c1"))["Statement"]}
    resize = statements["ResizeOurGroupsOnly"]
    assert resize["Action"] == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert resize["Condition"] == {
        "Null": {"aws:ResourceTag/k8s.io/cluster-autoscaler/c1": "false"}
    }
    assert not any(
        a.startswith(("autoscaling:Set", "autoscaling:Terminate"))
        for a in statements["Discover"]["Action"]
    )


@pytest.mark.parametrize(
    ("version", "tag"), [("1.33", "v1.33.6"), ("1.34", "v1.34.5"), ("1.36", "v1.36.1")]
)
def test_autoscaler_minor_follows_the_cluster_version(render_eks, version, tag):
    chart = _inputs(
        render_eks({CLUSTER: {"version": version}}), CHART, "tfserving-cluster-autoscaler-chart"
    )
    assert chart["values"]["image"] == {"tag": tag}


def test_nvidia_device_plugin_only_with_gpu_groups(eks, eks_gpu):
    assert [c["name"] for c in resources_of(eks, CHART)] == ["tfserving-cluster-autoscaler-chart"]
    plugin = one_resource(eks_gpu, CHART, "tfserving-nvidia-device-plugin")
    inputs = plugin["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "nvidia-device-plugin",
        DEVICE_PLUGIN_VERSION,
        "kube-system",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://nvidia.github.io/k8s-device-plugin"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in inputs[
        "values"
    ]["tolerations"]
    gpu_group = one_resource(eks_gpu, NODE_GROUP, "tfserving-gpu")
    assert gpu_group["urn"] in plugin["dependencies"]


def test_kubernetes_objects_wait_for_nodes_autoscaler_and_gpu_plugin(eks_gpu):
    waits = {r["urn"] for r in resources_of(eks_gpu, NODE_GROUP)}
    waits |= {one_resource(eks_gpu, ADDON, "tfserving-metrics-server")["urn"]}
    # A component dependency stands for its children: the autoscaler's chart among them.
    waits |= {one_resource(eks_gpu, CHART, "tfserving-cluster-autoscaler-chart")["urn"]}
    waits |= {one_resource(eks_gpu, CHART, "tfserving-nvidia-device-plugin")["urn"]}
    objects = [
        r
        for r in eks_gpu.resources
        if r["type"].startswith("kubernetes:")
        and r["custom"]
        and r["type"] != CHART
        and r["parent"].rsplit("::", 1)[-1] == "tfserving"
        and "ClusterAutoscaler" not in r["parent"]
    ]
    assert len(objects) == len(eks_gpu.kubernetes_objects) >= 14
    for obj in objects:
        assert waits <= set(obj["dependencies"]), obj["name"]
