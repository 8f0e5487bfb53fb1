"""The EKS cluster's compute built alone, input by input: node groups, their role, launch
templates, add-ons, the autoscaler and GPU device plugin, or Auto Mode's metrics and GPU pool."""

import json
from typing import Any

from components.auto_mode import Requirement, gpu_node_pool_spec
from config.cluster import GpuNodePoolSettings
from tests.components.eks_builds import IMDS, OVERWRITE, PREFIX, auto_mode, node_groups_mode
from tools.render import cloud


def _nodes_share_a_role_with_the_worker_and_pull_policies(groups):
    role = groups.one("aws:iam/role:Role", "tfserving-nodes")
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    attached = {
        r["name"]: (r["inputs"], r["parent"])
        for r in groups.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r["name"].startswith("tfserving-nodes-")
    }
    name = role["state"]["name"]
    assert attached == {
        "tfserving-nodes-worker": (
            {"role": name, "policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"},
            role["urn"],
        ),
        "tfserving-nodes-ecr-read": (
            {
                "role": name,
                "policyArn": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
            },
            role["urn"],
        ),
    }


def _the_vpc_cni_runs_on_its_own_role_and_enforces_network_policies(groups):
    cluster = groups.outputs
    role = groups.one("aws:iam/role:Role", "tfserving-vpc-cni")
    issuer = cluster["oidcIssuer"]
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": cluster["oidcProviderArn"]},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": "system:serviceaccount:kube-system:aws-node",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }
    attachment = groups.one(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "tfserving-vpc-cni"
    )
    assert attachment["inputs"] == {
        "role": role["state"]["name"],
        "policyArn": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    }
    assert attachment["parent"] == role["urn"]
    addon = groups.one("eks:index:Addon", "tfserving-vpc-cni")
    assert addon["inputs"] == {
        "cluster": groups.outputs["cluster"],
        "addonName": "vpc-cni",
        "addonVersion": "v1.20.1-eksbuild.3",  # the stack's pin
        "serviceAccountRoleArn": role["state"]["arn"],
        "configurationValues": {"enableNetworkPolicy": "true"},
        **OVERWRITE,
    }


def _add_ons_on_the_nodes_at_the_newest_version_unless_pinned(groups):
    asked = sorted(
        (
            args
            for token, args in groups.invokes
            if token == "aws:eks/getAddonVersion:getAddonVersion"
        ),
        key=lambda args: str(args["addonName"]),
    )
    # the newest build for the cluster's version (not EKS's "default"); vpc-cni is pinned
    assert asked == [
        {"addonName": "eks-pod-identity-agent", "kubernetesVersion": "1.35", "mostRecent": True},
        {"addonName": "metrics-server", "kubernetesVersion": "1.35", "mostRecent": True},
    ]
    groups_urns = groups.outputs["groups"]
    for name, addon in (
        ("tfserving-metrics-server", "metrics-server"),
        ("tfserving-pod-identity-agent", "eks-pod-identity-agent"),
    ):
        record = groups.one("eks:index:Addon", name)
        assert record["inputs"] == {
            "cluster": groups.outputs["cluster"],
            "addonName": addon,
            "addonVersion": cloud.ADDON_VERSIONS[addon],
            **OVERWRITE,
        }
        assert set(groups_urns) <= set(record["dependencies"])
        assert record["parent"] == groups.one("tfserving:index:EksCluster")["urn"]


def _launch_templates_require_imdsv2_and_size_root_volumes(groups):
    templates = {r["name"]: r["inputs"] for r in groups.of("aws:ec2/launchTemplate:LaunchTemplate")}

    def disk(gib: int) -> list[dict[str, Any]]:
        return [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": gib, "volumeType": "gp3", "encrypted": "true"},
            }
        ]

    assert templates == {
        "tfserving-nodes": {"metadataOptions": IMDS},
        "tfserving-cpu-nodes": {"metadataOptions": IMDS, "blockDeviceMappings": disk(40)},
        "tfserving-gpu-nodes": {"metadataOptions": IMDS, "blockDeviceMappings": disk(100)},
    }


def _node_groups_on_private_subnets_scaled_by_the_autoscaler(groups):
    private = groups.outputs["privateSubnetIds"]
    cni = groups.one("eks:index:Addon", "tfserving-vpc-cni")
    attachments = [groups.urn("tfserving-nodes-worker"), groups.urn("tfserving-nodes-ecr-read")]

    def group(name: str, template: str, **changes: Any) -> dict[str, Any]:
        return {
            "cluster": groups.outputs["cluster"],
            "nodeRole": "tfserving-nodes-id",
            "version": "1.35",
            "subnetIds": private,
            "instanceTypes": ["m5.large"],
            "capacityType": "ON_DEMAND",
            "amiType": "AL2023_x86_64_STANDARD",
            "scalingConfig": {"minSize": 1, "desiredSize": 2, "maxSize": 4},
            "ignoreScalingChanges": True,
            "labels": {"tfserving/node-group": name},
            "taints": [],
            "launchTemplate": {"id": f"{template}-id", "version": "1"},
            **changes,
        }

    found = {r["name"]: r for r in groups.of("eks:index:ManagedNodeGroup")}
    assert found["tfserving-cpu"]["inputs"] == group("cpu", "tfserving-cpu-nodes")
    assert found["tfserving-small"]["inputs"] == group("small", "tfserving-nodes")
    assert found["tfserving-gpu"]["inputs"] == group(
        "gpu",
        "tfserving-gpu-nodes",
        instanceTypes=["g5.xlarge"],
        amiType="AL2023_x86_64_NVIDIA",
        scalingConfig={"minSize": 0, "desiredSize": 2, "maxSize": 4},
        labels={"tfserving/node-group": "gpu", "nvidia.com/gpu.present": "true"},
        taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
    )
    for record in found.values():
        assert set(attachments) | {cni["urn"]} <= set(record["dependencies"]), record["name"]
        assert record["parent"] == groups.one("tfserving:index:EksCluster")["urn"]


def _the_gpu_device_plugin_runs_on_gpu_nodes_after_them(groups):
    plugin = groups.one("kubernetes:helm.sh/v4:Chart", "tfserving-nvidia-device-plugin")
    assert plugin["inputs"] == {
        "chart": "nvidia-device-plugin",
        "version": "0.20.0",
        "repositoryOpts": {"repo": "https://nvidia.github.io/k8s-device-plugin"},
        "namespace": "kube-system",
        "values": {
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "CriticalAddonsOnly", "operator": "Exists"},
            ]
        },
    }
    assert plugin["provider"].startswith(groups.outputs["provider"] + "::")
    assert set(groups.outputs["groups"]) <= set(plugin["dependencies"])


def _the_autoscaler_knows_the_cluster_its_region_and_minor(groups):
    chart = groups.one("kubernetes:helm.sh/v4:Chart", "tfserving-cluster-autoscaler-chart")
    values = chart["inputs"]["values"]
    assert (values["autoDiscovery"], values["awsRegion"], values["image"]) == (
        {"clusterName": "tfserving-test"},
        "eu-west-1",
        {"tag": "v1.35.2"},
    )
    assert chart["provider"].startswith(groups.outputs["provider"] + "::")
    association = groups.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    agent = groups.urn("tfserving-pod-identity-agent")
    assert {agent, *groups.outputs["groups"]} <= set(association["dependencies"])


def _everything_on_the_cluster_waits_for_nodes_metrics_autoscaler_and_plugin(groups, auto):
    prefix = PREFIX
    assert groups.outputs["compute"] == [
        *groups.outputs["groups"],
        groups.outputs["metrics"],
        f"{prefix}eks:index:Addon::tfserving-pod-identity-agent",
        f"{prefix}tfserving:index:ClusterAutoscaler::tfserving-cluster-autoscaler",
        f"{prefix}kubernetes:helm.sh/v4:Chart::tfserving-nvidia-device-plugin",
    ]
    assert auto.outputs["compute"] == [
        auto.outputs["metrics"],
        f"{prefix}kubernetes:core/v1:ConfigMapPatch::tfserving-network-policy-controller",
        f"{prefix}kubernetes:karpenter.sh/v1:NodePool::tfserving-gpu-node-pool",
    ]
    assert auto.outputs["groups"] == []


def _auto_mode_has_the_metrics_server_network_policies_and_a_gpu_pool(auto):
    metrics = auto.one("eks:index:Addon")
    assert metrics["name"] == "tfserving-metrics-server"
    assert metrics["inputs"] == {
        "cluster": auto.outputs["cluster"],
        "addonName": "metrics-server",
        "addonVersion": cloud.ADDON_VERSIONS["metrics-server"],
        **OVERWRITE,
    }
    patch = auto.one("kubernetes:core/v1:ConfigMapPatch", "tfserving-network-policy-controller")
    assert patch["inputs"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "amazon-vpc-cni", "namespace": "kube-system"},
        "data": {"enable-network-policy-controller": "true"},
    }
    assert patch["provider"].startswith(auto.outputs["provider"] + "::")
    assert patch["parent"] == auto.one("tfserving:index:EksCluster")["urn"]
    assert auto.outputs["cluster"] in patch["dependencies"]
    pool = auto.one("kubernetes:karpenter.sh/v1:NodePool", "tfserving-gpu-node-pool")
    assert pool["inputs"] == {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"labels": {"app.kubernetes.io/part-of": "tfserving"}},
        "spec": gpu_node_pool_spec(GpuNodePoolSettings.model_validate({"maxGpus": 2})),
    }
    assert pool["parent"] == auto.one("tfserving:index:EksCluster")["urn"]
    assert pool["provider"].startswith(auto.outputs["provider"] + "::")
    assert auto.outputs["cluster"] in pool["dependencies"]
    assert not auto.of("eks:index:ManagedNodeGroup") and not auto.of(
        "aws:ec2/launchTemplate:LaunchTemplate"
    )


# One build per mode, every input checked (a build takes most of a second).


def test_each_compute_mode_builds_its_nodes_input_by_input():
    groups, auto = node_groups_mode(), auto_mode()
    _nodes_share_a_role_with_the_worker_and_pull_policies(groups)
    _the_vpc_cni_runs_on_its_own_role_and_enforces_network_policies(groups)
    _add_ons_on_the_nodes_at_the_newest_version_unless_pinned(groups)
    _launch_templates_require_imdsv2_and_size_root_volumes(groups)
    _node_groups_on_private_subnets_scaled_by_the_autoscaler(groups)
    _the_gpu_device_plugin_runs_on_gpu_nodes_after_them(groups)
    _the_autoscaler_knows_the_cluster_its_region_and_minor(groups)
    _everything_on_the_cluster_waits_for_nodes_metrics_autoscaler_and_plugin(groups, auto)
    _auto_mode_has_the_metrics_server_network_policies_and_a_gpu_pool(auto)


def test_a_requirement_is_a_node_selector_term():
    assert Requirement("k", ("a", "b")).to_dict() == {
        "key": "k",
        "operator": "In",
        "values": ["a", "b"],
    }
    assert Requirement("k", (), "Exists").to_dict() == {
        "key": "k",
        "operator": "Exists",
        "values": [],
    }


def test_the_gpu_node_pool_launches_tainted_nvidia_amd64_nodes_up_to_a_gpu_ceiling():
    settings = GpuNodePoolSettings.model_validate(
        {"instanceFamilies": ["g6e"], "capacityTypes": ["spot", "on-demand"], "maxGpus": 8}
    )
    assert gpu_node_pool_spec(settings) == {
        "template": {
            "metadata": {"labels": {"nvidia.com/gpu.present": "true"}},
            "spec": {
                "nodeClassRef": {
                    "group": "eks.amazonaws.com",
                    "kind": "NodeClass",
                    "name": "default",
                },
                "requirements": [
                    {
                        "key": "eks.amazonaws.com/instance-family",
                        "operator": "In",
                        "values": ["g6e"],
                    },
                    {
                        "key": "eks.amazonaws.com/instance-gpu-manufacturer",
                        "operator": "In",
                        "values": ["nvidia"],
                    },
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": ["spot", "on-demand"],
                    },
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                ],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h",
            },
        },
        "limits": {"nvidia.com/gpu": "8"},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"},
    }
