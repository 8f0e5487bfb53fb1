"""An EKS cluster ready for the model server: VPC, control plane, compute that scales, add-ons.

Nodes run in private subnets without public addresses and reach the internet through NAT; load
balancers go in the public (or, internal, the private) subnets. Compute is either managed node
groups sized by the Cluster Autoscaler, or EKS Auto Mode. Everything on the cluster should use
`provider` and depend on `compute`: destroy then deletes Kubernetes objects, and with them the
AWS load balancers that LoadBalancer Services own outside Pulumi's state, before the nodes, the
cluster and the VPC that those load balancers would otherwise keep from being deleted.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import auto_mode, eks_nodes
from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from config.cluster import ClusterSettings, Compute, GpuNodePoolSettings, NatGateways

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
LOG_TYPES = ["api", "audit", "authenticator"]
# Subnet sizes per zone: pods take VPC addresses (VPC CNI), so private subnets are big (4091
# addresses). A /20 plus a /24 per zone fits the default /16 VPC even across 6 zones.
PRIVATE_CIDR_MASK = 20
PUBLIC_CIDR_MASK = 24
VPC_CIDR = "10.0.0.0/16"  # awsx's default, written out: internal load balancers admit it
_NAT = {
    NatGateways.SINGLE: awsx.ec2.NatGatewayStrategy.SINGLE,
    NatGateways.ONE_PER_AZ: awsx.ec2.NatGatewayStrategy.ONE_PER_AZ,
}


@dataclass(frozen=True)
class EksClusterArgs:
    # The EKS cluster name: fixed (not auto-named), so `aws eks update-kubeconfig --name`, the
    # `kubernetes.io/cluster/<name>` tags and the control-plane log group are predictable.
    cluster_name: str
    settings: ClusterSettings
    region: str | None = None
    # Auto Mode only: the GPU NodePool, when the model server asks for GPUs.
    gpu_node_pool: GpuNodePoolSettings | None = None


def admin_entry_key(arn: str) -> str:
    # Keyed by the ARN, not its position: reordering the list must not recreate entries.
    return "admin-" + hashlib.sha256(arn.encode()).hexdigest()[:8]


def viewer_entry_key(arn: str) -> str:
    return "viewer-" + hashlib.sha256(arn.encode()).hexdigest()[:8]


def _policy_entry(arn: str, policy: str) -> eks.AccessEntryArgs:
    return eks.AccessEntryArgs(
        principal_arn=arn,
        type=eks.AccessEntryType.STANDARD,
        access_policies={
            "policy": eks.AccessPolicyAssociationArgs(
                policy_arn=policy,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            )
        },
    )


def access_entries(
    settings: ClusterSettings, creator_arn: str, node_role_arn: pulumi.Input[str] | None
) -> dict[str, eks.AccessEntryArgs]:
    """Admins and viewers; never the identity that creates the cluster, which EKS already made
    admin (pulumi-eks sets bootstrapClusterCreatorAdminPermissions), so a second entry for it
    would fail with ResourceInUseException."""
    entries: dict[str, eks.AccessEntryArgs] = {}
    if node_role_arn is not None:
        # What pulumi-eks creates for `instanceRoles`, made with the cluster, so before any node.
        entries["nodes"] = eks.AccessEntryArgs(
            principal_arn=node_role_arn, type=eks.AccessEntryType.EC2_LINUX
        )
    for arn in settings.admin_role_arns:
        if arn != creator_arn:
            entries[admin_entry_key(arn)] = _policy_entry(arn, CLUSTER_ADMIN_POLICY)
    for arn in settings.viewer_role_arns:
        if arn != creator_arn:
            entries[viewer_entry_key(arn)] = _policy_entry(arn, CLUSTER_VIEW_POLICY)
    return entries


def creator_role_arn(parent: pulumi.Resource) -> str:
    """The IAM principal running this update: an assumed role's role ARN, not its session's."""
    caller = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=parent))
    session = aws.iam.get_session_context(arn=caller.arn, opts=pulumi.InvokeOptions(parent=parent))
    return str(session.issuer_arn)


def addon_version(
    settings: ClusterSettings, addon: str, parent: pulumi.Resource
) -> pulumi.Input[str]:
    """The stack's pin (cluster.addonVersions), else the newest version for the cluster's
    Kubernetes version. Not EKS's "default" version: most_recent=False returns only a version
    EKS flags as default and fails when none is (terraform-provider-aws
    findAddonVersionByTwoPartKey; seen for community add-ons), while most_recent always has an
    answer for an add-on EKS offers. A newer build shows up in a preview as an add-on update."""
    pinned = settings.addon_versions.get(addon)
    if pinned is not None:
        return pinned
    return aws.eks.get_addon_version_output(
        addon_name=addon,
        kubernetes_version=settings.version,
        most_recent=True,
        opts=pulumi.InvokeOutputOptions(parent=parent),
    ).version


class EksCluster(pulumi.ComponentResource):
    cluster_name: str
    vpc: awsx.ec2.Vpc
    cluster: eks.Cluster
    node_groups: list[eks.ManagedNodeGroup]
    metrics_server: eks.Addon
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    # What every Kubernetes object of ours waits for (nodes to run on, metrics for the HPA).
    compute: list[pulumi.Resource]

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:EksCluster", name, None, opts)
        self.cluster_name = args.cluster_name
        self._settings = settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        node_groups_mode = settings.compute is Compute.NODE_GROUPS

        self.vpc = self._vpc(name, args)
        # EKS would create this group itself, outside Pulumi's state and never expiring; made
        # here first, it gets a retention and goes with `pulumi destroy`.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=settings.log_retention_days,
            opts=child,
        )
        role, attachments = eks_nodes.node_role(name, self) if node_groups_mode else (None, [])
        creator = creator_role_arn(self)
        self.cluster = eks.Cluster(
            name,
            name=args.cluster_name,
            version=settings.version,
            # STANDARD by default: at the end of standard support EKS upgrades the control plane
            # instead of billing extended support ($0.60/h instead of $0.10/h) unasked.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(
                support_type=settings.upgrade_policy.value
            ),
            vpc_id=self.vpc.vpc_id,
            public_subnet_ids=self.vpc.public_subnet_ids,
            private_subnet_ids=self.vpc.private_subnet_ids,
            node_associate_public_ip_address=False,
            skip_default_node_group=True,
            # The API inside the VPC always; from outside only from these ranges.
            endpoint_private_access=True,
            endpoint_public_access=True,
            public_access_cidrs=settings.public_access_cidrs,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries(settings, creator, role.arn if role else None),
            create_oidc_provider=True,
            enabled_cluster_log_types=LOG_TYPES,
            auto_mode=(
                eks.AutoModeOptionsArgs(
                    enabled=True,
                    compute_config=eks.ClusterComputeConfigArgs(
                        node_pools=["general-purpose", "system"]
                    ),
                )
                if not node_groups_mode
                else None
            ),
            # nodeGroups: the VPC CNI add-on is ours (below), on its own role, enforcing policies.
            use_default_vpc_cni=True if node_groups_mode else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
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
        if node_groups_mode:
            assert role is not None
            self.compute = self._node_groups(name, args, role, attachments)
        else:
            self.node_groups = []
            self.compute = self._auto_mode(name, args)
        self.register_outputs(
            {
                "clusterName": args.cluster_name,
                "vpcId": self.vpc.vpc_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _addon(
        self,
        name: str,
        addon: str,
        depends_on: list[pulumi.Resource],
        service_account_role_arn: pulumi.Input[str] | None = None,
        configuration_values: Mapping[str, str] | None = None,
    ) -> eks.Addon:
        return eks.Addon(
            name,
            cluster=self.cluster,
            addon_name=addon,
            addon_version=addon_version(self._settings, addon, self),
            service_account_role_arn=service_account_role_arn,
            configuration_values=configuration_values,
            # Adopt what someone installed by hand; Pulumi owns its settings after.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _node_groups(
        self,
        name: str,
        args: EksClusterArgs,
        role: aws.iam.Role,
        attachments: list[pulumi.Resource],
    ) -> list[pulumi.Resource]:
        settings = args.settings
        vpc_cni = self._addon(
            f"{name}-vpc-cni",
            "vpc-cni",
            [],
            service_account_role_arn=self._cni_role(name).arn,
            # The CNI's network-policy agent enforces our NetworkPolicies.
            configuration_values={"enableNetworkPolicy": "true"},
        )
        self.node_groups = eks_nodes.node_groups(
            name,
            settings,
            role=role,
            attachments=attachments,
            cluster=self.cluster,
            subnet_ids=self.vpc.private_subnet_ids,
            parent=self,
            wait_for=[vpc_cni],
        )
        # metrics-server (what the HPA reads) and the Pod Identity agent run on the nodes.
        self.metrics_server = self._addon(
            f"{name}-metrics-server", "metrics-server", list(self.node_groups)
        )
        pod_identity = self._addon(
            f"{name}-pod-identity-agent", "eks-pod-identity-agent", list(self.node_groups)
        )
        autoscaler = ClusterAutoscaler(
            f"{name}-cluster-autoscaler",
            ClusterAutoscalerArgs(
                cluster_name=args.cluster_name,
                region=args.region,
                image_tag=settings.kubernetes.autoscaler_image_tag,
                provider=self.provider,
                depends_on=[*self.node_groups, pod_identity],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        waits: list[pulumi.Resource] = [
            *self.node_groups,
            self.metrics_server,
            pod_identity,
            autoscaler,
        ]
        if settings.gpu_groups:
            waits.append(eks_nodes.device_plugin(name, self.provider, self, list(self.node_groups)))
        return waits

    def _auto_mode(self, name: str, args: EksClusterArgs) -> list[pulumi.Resource]:
        self.metrics_server = self._addon(f"{name}-metrics-server", "metrics-server", [])
        waits: list[pulumi.Resource] = [
            self.metrics_server,
            auto_mode.network_policy_controller(name, self.provider, self, [self.cluster]),
        ]
        if args.gpu_node_pool is not None:
            waits.append(
                auto_mode.gpu_node_pool(
                    name, args.gpu_node_pool, self.provider, self, [self.cluster]
                )
            )
        return waits

    def _cni_role(self, name: str) -> aws.iam.Role:
        """The VPC CNI's own role (IRSA, for kube-system/aws-node), so the nodes' role does not
        need to manage network interfaces (AWS: "configure the VPC CNI to use IRSA")."""
        trust = pulumi.Output.all(self.cluster.oidc_provider_arn, self.cluster.oidc_issuer).apply(
            lambda pair: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": pair[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{pair[1]}:sub": "system:serviceaccount:kube-system:aws-node",
                                    f"{pair[1]}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            )
        )
        role = aws.iam.Role(
            f"{name}-vpc-cni", assume_role_policy=trust, opts=pulumi.ResourceOptions(parent=self)
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni",
            role=role.name,
            policy_arn=CNI_POLICY,
            opts=pulumi.ResourceOptions(parent=role),
        )
        return role

    def _vpc(self, name: str, args: EksClusterArgs) -> awsx.ec2.Vpc:
        owned = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}
        return awsx.ec2.Vpc(
            name,
            cidr_block=VPC_CIDR,
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
