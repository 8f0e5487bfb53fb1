"""The Kubernetes Cluster Autoscaler: pending pods get nodes, idle nodes go (compute nodeGroups).

It discovers our managed node groups by the tags EKS puts on their Auto Scaling groups
(`k8s.io/cluster-autoscaler/enabled`, `k8s.io/cluster-autoscaler/<cluster>`) and moves their
desired size between each group's minSize and maxSize. Its AWS permissions come through EKS Pod
Identity: a role trusted by `pods.eks.amazonaws.com`, bound to its service account only.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

# kubernetes/autoscaler's chart (https://kubernetes.github.io/autoscaler), 9.59.0 of 2026-07-21;
# the image tag is set to the cluster's Kubernetes minor (the autoscaler's minor must match).
CHART = "cluster-autoscaler"
CHART_VERSION = "9.59.0"
CHART_REPO = "https://kubernetes.github.io/autoscaler"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"
# Trust policy of an EKS Pod Identity role
# (docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html).
POD_IDENTITY_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ],
}


def autoscaler_policy(cluster_name: str) -> str:
    """Read what it must, and resize or shrink only Auto Scaling groups tagged as this cluster's.

    The permissions of the autoscaler's AWS documentation (cloudprovider/aws/README.md), with the
    writes limited by the discovery tag EKS sets on a managed node group's Auto Scaling group.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Discover",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "ResizeOurGroupsOnly",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    "Resource": "*",
                    # The tag is present (any value) on this cluster's groups only.
                    "Condition": {
                        "Null": {
                            f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "false"
                        }
                    },
                },
            ],
        },
        sort_keys=True,
    )


def chart_values(cluster_name: str, region: str | None, image_tag: str) -> dict[str, object]:
    values: dict[str, object] = {
        "cloudProvider": "aws",
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": image_tag},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "extraArgs": {
            # Spread a scale-up over zones, add the cheapest fitting node, and let nodes that run
            # only kube-system pods (DNS, metrics-server) be removed when idle.
            "balance-similar-node-groups": True,
            "expander": "least-waste",
            "skip-nodes-with-system-pods": False,
            "scale-down-unneeded-time": "10m",
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"cpu": "500m", "memory": "600Mi"},
        },
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if region:
        values["awsRegion"] = region
    return values


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    # Known before the cluster exists: the IAM condition and the chart's discovery use it.
    cluster_name: str
    region: str | None
    image_tag: str
    provider: k8s.Provider
    # The node groups to scale and the Pod Identity agent that hands out its credentials.
    depends_on: Sequence[pulumi.Resource]


class ClusterAutoscaler(pulumi.ComponentResource):
    """Its IAM role (Pod Identity), the association with its service account, and the chart."""

    chart: k8s.helm.v4.Chart
    role: aws.iam.Role

    def __init__(
        self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=json.dumps(POD_IDENTITY_TRUST), opts=child
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=autoscaler_policy(args.cluster_name),
            opts=pulumi.ResourceOptions(parent=self.role),
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=self.role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            chart=CHART,
            version=CHART_VERSION,
            repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            values=chart_values(args.cluster_name, args.region, args.image_tag),
            # Credentials first: a pod started before its association gets the node's identity.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[policy, association, *args.depends_on],
            ),
        )
        self.register_outputs({"roleArn": self.role.arn})
