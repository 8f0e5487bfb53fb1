"""Managed node groups (compute nodeGroups): their role, launch templates, groups and GPU plugin.

Resources here are children of the EksCluster component that calls these functions; they keep
the logical names they always had (`<name>-nodes`, `<name>-<group>`), so a deployed stack is
updated in place. The Cluster Autoscaler (components/cluster_autoscaler.py) sizes the groups
between minSize and maxSize; Pulumi sets desiredSize at creation only.
"""

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from config.cluster import CPU_DISK_GIB, ClusterSettings, NodeGroupSettings

# Commercial partition (arn:aws); GovCloud and China would need other ARNs.
# The VPC CNI's policy is not here: the CNI runs on a role of its own (EksCluster).
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    # Pull only (no ecr:List*/Describe*): all a kubelet needs to run our images.
    "ecr-read": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
}
CPU_AMI = "AL2023_x86_64_STANDARD"
GPU_AMI = "AL2023_x86_64_NVIDIA"
GPU_RESOURCE = "nvidia.com/gpu"
# NVIDIA's device plugin schedules by this label (its chart's default node affinity), and the
# model server's GPU pods select it.
GPU_NODE_LABEL = "nvidia.com/gpu.present"
NODE_GROUP_LABEL = "tfserving/node-group"
# IMDSv2 only, one network hop: processes on the node (kubelet, the hostNetwork VPC CNI) reach
# the instance metadata service, pods on the pod network do not. A pod that needs AWS access
# gets its own role through EKS Pod Identity instead of borrowing the node's.
IMDS_HOP_LIMIT = 1
ROOT_DEVICE = "/dev/xvda"  # the AL2023 AMIs' root volume
# NVIDIA's Kubernetes device plugin: makes nvidia.com/gpu schedulable on the NVIDIA AMI's nodes
# (the AMI has the driver, not the plugin). Chart nvidia-device-plugin, repository
# https://nvidia.github.io/k8s-device-plugin, v0.20.0 (2026-08-20).
DEVICE_PLUGIN_CHART = "nvidia-device-plugin"
DEVICE_PLUGIN_VERSION = "0.20.0"
DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"


def node_group_labels(group: NodeGroupSettings) -> dict[str, str]:
    labels = {NODE_GROUP_LABEL: group.name}
    if group.gpu:
        labels[GPU_NODE_LABEL] = "true"
    return labels


def node_group_taints(group: NodeGroupSettings) -> list[aws.eks.NodeGroupTaintArgs]:
    # Only pods that tolerate the taint (the GPU model server) are scheduled on GPU nodes.
    if not group.gpu:
        return []
    return [aws.eks.NodeGroupTaintArgs(key=GPU_RESOURCE, value="true", effect="NO_SCHEDULE")]


def node_role(name: str, parent: pulumi.Resource) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """One role shared by every node group: the worker policy and pulling from ECR."""
    role = aws.iam.Role(
        f"{name}-nodes",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-nodes-{key}",
            role=role.name,
            policy_arn=arn,
            opts=pulumi.ResourceOptions(parent=role),
        )
        for key, arn in NODE_POLICIES.items()
    ]
    return role, attachments


def _launch_template(
    name: str, disk_gib: int | None, parent: pulumi.Resource
) -> aws.ec2.LaunchTemplate:
    """IMDSv2 for every node; a root volume of its own only where the AMI's default is too small.

    No image, no user data: EKS fills both in from the node group's AMI type.
    """
    return aws.ec2.LaunchTemplate(
        name,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=IMDS_HOP_LIMIT,
        ),
        block_device_mappings=(
            [
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=disk_gib, volume_type="gp3", encrypted="true"
                    ),
                )
            ]
            if disk_gib is not None
            else None
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def node_groups(
    name: str,
    settings: ClusterSettings,
    *,
    role: aws.iam.Role,
    attachments: Sequence[pulumi.Resource],
    cluster: eks.Cluster,
    subnet_ids: pulumi.Input[Sequence[str]],
    parent: pulumi.Resource,
    wait_for: Sequence[pulumi.Resource],
) -> list[eks.ManagedNodeGroup]:
    """The managed node groups, each scaled by the Cluster Autoscaler within min..max."""
    # Groups on the AMI's default root volume share the template they always had; a group that
    # needs a bigger one (GPU groups, or diskSize) gets its own.
    shared = _launch_template(f"{name}-nodes", None, parent)
    groups = []
    for group in settings.node_groups:
        own_disk = group.root_volume_gib != CPU_DISK_GIB
        template = (
            _launch_template(f"{name}-{group.name}-nodes", group.root_volume_gib, parent)
            if own_disk
            else shared
        )
        groups.append(
            eks.ManagedNodeGroup(
                f"{name}-{group.name}",
                # No node_group_name: EKS names it uniquely, so a replacement can come first.
                cluster=cluster,
                node_role=role,
                version=settings.version,
                # Explicit, not the cluster's subnet list (which also holds the public subnets).
                subnet_ids=subnet_ids,
                instance_types=[t.value for t in group.instance_types],
                capacity_type=group.capacity_type.value,
                ami_type=GPU_AMI if group.gpu else CPU_AMI,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=group.min_size,
                    desired_size=group.desired_size,
                    max_size=group.max_size,
                ),
                # The autoscaler moves desiredSize; re-applying ours would fight it.
                ignore_scaling_changes=True,
                labels=node_group_labels(group),
                taints=node_group_taints(group),
                launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                # Nodes must not boot before their role can pull images and the VPC CNI (on its
                # own role) can give pods addresses.
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[*attachments, *wait_for]),
            )
        )
    return groups


def device_plugin(
    name: str, provider: k8s.Provider, parent: pulumi.Resource, wait_for: Sequence[pulumi.Resource]
) -> k8s.helm.v4.Chart:
    """NVIDIA's device plugin on the GPU nodes only: their label and taint, nowhere else."""
    return k8s.helm.v4.Chart(
        f"{name}-nvidia-device-plugin",
        chart=DEVICE_PLUGIN_CHART,
        version=DEVICE_PLUGIN_VERSION,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
        namespace="kube-system",
        values={
            # The chart's default affinity selects nvidia.com/gpu.present=true (our GPU groups'
            # label); its default tolerations include the nvidia.com/gpu taint.
            "tolerations": [
                {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                {"key": "CriticalAddonsOnly", "operator": "Exists"},
            ],
        },
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(wait_for)),
    )
