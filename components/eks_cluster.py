"""An EKS cluster ready for the model server: VPC, control plane, node groups, metrics-server.

Nodes run in private subnets without public addresses and reach the internet through NAT; load
balancers go in the public subnets. Everything on the cluster should use `provider` and depend on
`node_groups` (and `metrics_server`): destroy then deletes Kubernetes objects, and with them the
AWS load balancers that LoadBalancer Services own outside Pulumi's state, before the nodes, the
cluster and the VPC that those load balancers would otherwise keep from being deleted.
"""

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from config.cluster import ClusterSettings, NatGateways, NodeGroupSettings

# Commercial partition (arn:aws); GovCloud and China would need other ARNs.
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ecr-read": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
LOG_TYPES = ["api", "audit", "authenticator"]
CPU_AMI = "AL2023_x86_64_STANDARD"
GPU_AMI = "AL2023_x86_64_NVIDIA"
GPU_KEY = "nvidia.com/gpu"
NODE_GROUP_LABEL = "tfserving/node-group"
# Subnet sizes per zone: pods take VPC addresses (VPC CNI), so private subnets are big (4091
# addresses). A /20 plus a /24 per zone fits the default /16 VPC even across 6 zones.
PRIVATE_CIDR_MASK = 20
PUBLIC_CIDR_MASK = 24
# IMDSv2 only, one network hop: processes on the node (kubelet, the hostNetwork VPC CNI) reach
# the instance metadata service, pods on the pod network do not. The node role can manage network
# interfaces and read every ECR repository; no pod of ours needs that, and one that needs AWS
# access should get its own role through the cluster's OIDC provider (IRSA) instead.
IMDS_HOP_LIMIT = 1
_NAT = {
    NatGateways.SINGLE: awsx.ec2.NatGatewayStrategy.SINGLE,
    NatGateways.ONE_PER_AZ: awsx.ec2.NatGatewayStrategy.ONE_PER_AZ,
}


@dataclass(frozen=True)
class EksClusterArgs:
    # The EKS cluster name: fixed (not auto-named), so `aws eks update-kubeconfig --name` and the
    # `kubernetes.io/cluster/<name>` tags on what the cluster creates are predictable.
    cluster_name: str
    settings: ClusterSettings


def node_group_labels(group: NodeGroupSettings) -> dict[str, str]:
    labels = {NODE_GROUP_LABEL: group.name}
    if group.gpu:
        labels[GPU_KEY] = "true"
    return labels


def node_group_taints(group: NodeGroupSettings) -> list[aws.eks.NodeGroupTaintArgs]:
    # Only pods that tolerate the taint (GPU workloads) are scheduled on GPU nodes.
    if not group.gpu:
        return []
    return [aws.eks.NodeGroupTaintArgs(key=GPU_KEY, value="true", effect="NO_SCHEDULE")]


def admin_entry_key(arn: str) -> str:
    # Keyed by the ARN, not its position: reordering the list must not recreate entries.
    return "admin-" + hashlib.sha256(arn.encode()).hexdigest()[:8]


class EksCluster(pulumi.ComponentResource):
    cluster_name: str
    vpc: awsx.ec2.Vpc
    cluster: eks.Cluster
    node_role: aws.iam.Role
    node_groups: list[eks.ManagedNodeGroup]
    metrics_server: eks.Addon
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:EksCluster", name, None, opts)
        self.cluster_name = args.cluster_name
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        self.vpc = self._vpc(name, args)
        self.node_role, attachments = self._node_role(name)
        self.cluster = eks.Cluster(
            name,
            name=args.cluster_name,
            version=settings.version,
            vpc_id=self.vpc.vpc_id,
            public_subnet_ids=self.vpc.public_subnet_ids,
            private_subnet_ids=self.vpc.private_subnet_ids,
            node_associate_public_ip_address=False,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=self._access_entries(settings),
            create_oidc_provider=True,
            enabled_cluster_log_types=LOG_TYPES,
            opts=child,
        )
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
            ),
            # No image, no user data: EKS fills both in from the node group's AMI type.
            opts=child,
        )
        self.node_groups = [
            self._node_group(name, group, settings, launch_template, attachments)
            for group in settings.node_groups
        ]
        # metrics-server (what the HPA reads) as an EKS add-on. Its version is the one EKS marks
        # as the default for the cluster's Kubernetes version: always compatible with the pinned
        # control plane, and it moves only when AWS changes that default (visible in a preview as
        # an in-place add-on update), never to an untested "latest".
        addon_version = aws.eks.get_addon_version_output(
            addon_name="metrics-server",
            kubernetes_version=settings.version,
            most_recent=False,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.metrics_server = eks.Addon(
            f"{name}-metrics-server",
            cluster=self.cluster,
            addon_name="metrics-server",
            addon_version=addon_version.version,
            # Adopt a metrics-server someone installed by hand; Pulumi owns its settings after.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # Its pods need nodes; it is deleted before them on destroy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.node_groups),
        )
        self.kubeconfig = pulumi.Output.secret(self.cluster.kubeconfig_json)
        # Replaced only if the cluster identifier changes: a refreshed kubeconfig (new endpoint
        # certificate, token command) updates the provider instead of replacing every object.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.cluster.kubeconfig_json,
            cluster_identifier=args.cluster_name,
            opts=child,
        )
        self.register_outputs(
            {
                "clusterName": args.cluster_name,
                "vpcId": self.vpc.vpc_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _vpc(self, name: str, args: EksClusterArgs) -> awsx.ec2.Vpc:
        owned = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        return awsx.ec2.Vpc(
            name,
            number_of_availability_zones=args.settings.availability_zones,
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                strategy=_NAT[args.settings.nat_gateways]
            ),
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                # Internet-facing load balancers go here (the AWS cloud provider looks for the tag).
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PUBLIC,
                    cidr_mask=PUBLIC_CIDR_MASK,
                    tags={"kubernetes.io/role/elb": "1", **owned},
                ),
                # Nodes and pods; internal load balancers.
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PRIVATE,
                    cidr_mask=PRIVATE_CIDR_MASK,
                    tags={"kubernetes.io/role/internal-elb": "1", **owned},
                ),
            ],
            enable_dns_hostnames=True,
            enable_dns_support=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _node_role(self, name: str) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        """One role shared by every node group, with the three policies EKS nodes need."""
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
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{key}",
                role=role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=role),
            )
            for key, arn in NODE_POLICIES.items()
        ]
        return role, attachments

    def _access_entries(self, settings: ClusterSettings) -> dict[str, eks.AccessEntryArgs]:
        # API authentication mode: no aws-auth ConfigMap, access entries only. The nodes' role
        # gets an EC2_LINUX entry (what pulumi-eks creates for `instanceRoles`), made with the
        # cluster and so before any node boots; the admins get cluster-wide admin. The identity
        # that creates the cluster is made admin by EKS itself and must not be listed again.
        entries = {
            "nodes": eks.AccessEntryArgs(
                principal_arn=self.node_role.arn, type=eks.AccessEntryType.EC2_LINUX
            )
        }
        for arn in settings.admin_role_arns:
            entries[admin_entry_key(arn)] = eks.AccessEntryArgs(
                principal_arn=arn,
                type=eks.AccessEntryType.STANDARD,
                access_policies={
                    "admin": eks.AccessPolicyAssociationArgs(
                        policy_arn=CLUSTER_ADMIN_POLICY,
                        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    )
                },
            )
        return entries

    def _node_group(
        self,
        name: str,
        group: NodeGroupSettings,
        settings: ClusterSettings,
        launch_template: aws.ec2.LaunchTemplate,
        attachments: list[aws.iam.RolePolicyAttachment],
    ) -> eks.ManagedNodeGroup:
        return eks.ManagedNodeGroup(
            f"{name}-{group.name}",
            # No node_group_name: EKS names it uniquely, so a replacement can be created first.
            cluster=self.cluster,
            node_role=self.node_role,
            version=settings.version,
            # Explicit, not the cluster's subnet list (which also holds the public subnets).
            subnet_ids=self.vpc.private_subnet_ids,
            instance_types=group.instance_types,
            capacity_type=group.capacity_type.value,
            ami_type=GPU_AMI if group.gpu else CPU_AMI,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size,
                desired_size=group.desired_size,
                max_size=group.max_size,
            ),
            labels=node_group_labels(group),
            taints=node_group_taints(group),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            # Nodes must not boot before their role can pull images and set up pod networking.
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
