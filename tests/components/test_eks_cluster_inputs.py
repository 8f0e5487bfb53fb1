"""The EKS cluster component built alone, input by input: its VPC, logs, control plane, access
entries and provider, in both compute modes (nodes and add-ons: test_eks_node_inputs.py)."""

import hashlib
from typing import Any

from components import eks_cluster
from components.eks_cluster import access_entries, admin_entry_key, viewer_entry_key
from config.cluster import ClusterSettings
from tests.components.eks_builds import (
    ADMIN,
    VIEWER,
    auto_mode,
    build,
    node_groups_mode,
)
from tests.components.mocked import SECRET_SIG, SIG_KEY, Registered, plain
from tools.render import cloud


def _node_groups_mode_builds_exactly_these(groups):
    def mine(type_: str, name: str) -> tuple[str, str]:
        return type_, name

    assert groups.types() == sorted(
        [
            mine("tfserving:index:EksCluster", "tfserving"),
            mine("awsx:ec2:Vpc", "tfserving"),
            mine("aws:cloudwatch/logGroup:LogGroup", "tfserving-control-plane-logs"),
            mine("aws:iam/role:Role", "tfserving-nodes"),
            mine("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "tfserving-nodes-worker"),
            mine("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "tfserving-nodes-ecr-read"),
            mine("eks:index:Cluster", "tfserving"),
            mine("pulumi:providers:kubernetes", "tfserving-k8s"),
            mine("aws:iam/role:Role", "tfserving-vpc-cni"),
            mine("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "tfserving-vpc-cni"),
            mine("eks:index:Addon", "tfserving-vpc-cni"),
            mine("aws:ec2/launchTemplate:LaunchTemplate", "tfserving-nodes"),
            mine("aws:ec2/launchTemplate:LaunchTemplate", "tfserving-cpu-nodes"),
            mine("aws:ec2/launchTemplate:LaunchTemplate", "tfserving-gpu-nodes"),
            mine("eks:index:ManagedNodeGroup", "tfserving-cpu"),
            mine("eks:index:ManagedNodeGroup", "tfserving-small"),
            mine("eks:index:ManagedNodeGroup", "tfserving-gpu"),
            mine("eks:index:Addon", "tfserving-metrics-server"),
            mine("eks:index:Addon", "tfserving-pod-identity-agent"),
            mine("tfserving:index:ClusterAutoscaler", "tfserving-cluster-autoscaler"),
            mine("aws:iam/role:Role", "tfserving-cluster-autoscaler-role"),
            mine("aws:iam/rolePolicy:RolePolicy", "tfserving-cluster-autoscaler-policy"),
            mine(
                "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                "tfserving-cluster-autoscaler-pod-identity",
            ),
            mine("kubernetes:helm.sh/v4:Chart", "tfserving-cluster-autoscaler-chart"),
            mine("kubernetes:helm.sh/v4:Chart", "tfserving-nvidia-device-plugin"),
        ]
    )
    component = groups.one("tfserving:index:EksCluster")["urn"]
    nodes = groups.one("aws:iam/role:Role", "tfserving-nodes")["urn"]
    cni = groups.one("aws:iam/role:Role", "tfserving-vpc-cni")["urn"]
    autoscaler = groups.one("tfserving:index:ClusterAutoscaler")["urn"]
    by_role = {"tfserving-nodes-worker": nodes, "tfserving-nodes-ecr-read": nodes}
    for record in groups.records:
        if record["type"] == "tfserving:index:EksCluster" or record["parent"] == autoscaler:
            continue
        if record["parent"] in (
            nodes,
            cni,
            groups.one("aws:iam/role:Role", "tfserving-cluster-autoscaler-role")["urn"],
        ):
            continue
        assert record["parent"] == component, record["name"]
    for name, parent in by_role.items():
        assert groups.named(name)["parent"] == parent
    assert (
        groups.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "tfserving-vpc-cni")[
            "parent"
        ]
        == cni
    )


def _vpc(registered: Registered) -> dict[str, Any]:
    return registered.one("awsx:ec2:Vpc")


def _the_vpc_has_tagged_public_and_private_subnets(groups: Registered, auto: Registered) -> None:
    owned = {"kubernetes.io/cluster/tfserving-test": "shared"}
    subnets = [
        {"type": "Public", "cidrMask": 24, "tags": {"kubernetes.io/role/elb": "1", **owned}},
        {
            "type": "Private",
            "cidrMask": 20,
            "tags": {"kubernetes.io/role/internal-elb": "1", **owned},
        },
    ]
    common = {"cidrBlock": "10.0.0.0/16", "subnetStrategy": "Auto", "subnetSpecs": subnets,
              "enableDnsHostnames": True, "enableDnsSupport": True}  # fmt: skip
    assert _vpc(groups)["inputs"] == {
        **common,
        "numberOfAvailabilityZones": 2,
        "natGateways": {"strategy": "Single"},
    }
    assert _vpc(auto)["inputs"] == {
        **common,
        "numberOfAvailabilityZones": 3,
        "natGateways": {"strategy": "OnePerAz"},
    }
    assert _vpc(groups)["parent"] == groups.one("tfserving:index:EksCluster")["urn"]
    assert groups.outputs["vpc"] == _vpc(groups)["urn"]


def _control_plane_logs_expire_and_exist_before_the_cluster(groups, auto):
    for registered, days in ((groups, 30), (auto, 7)):
        logs = registered.one("aws:cloudwatch/logGroup:LogGroup")
        assert logs["inputs"] == {
            "name": "/aws/eks/tfserving-test/cluster",
            "retentionInDays": days,
        }
        assert logs["parent"] == registered.one("tfserving:index:EksCluster")["urn"]
        assert logs["urn"] in registered.one("eks:index:Cluster")["dependencies"]


def _cluster_inputs(registered: Registered) -> dict[str, Any]:
    vpc = registered.outputs
    assert len(vpc["privateSubnetIds"]) == len(vpc["publicSubnetIds"]) >= 2
    return {
        "name": "tfserving-test",
        "vpcId": vpc["vpcId"],
        "publicSubnetIds": vpc["publicSubnetIds"],
        "privateSubnetIds": vpc["privateSubnetIds"],
        "nodeAssociatePublicIpAddress": False,
        "skipDefaultNodeGroup": True,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
        "authenticationMode": "API",
        "createOidcProvider": True,
        "enabledClusterLogTypes": ["api", "audit", "authenticator"],
    }


def _policy_entry(arn: str, policy: str) -> dict[str, Any]:
    return {
        "principalArn": arn,
        "type": "STANDARD",
        "accessPolicies": {"policy": {"policyArn": policy, "accessScope": {"type": "cluster"}}},
    }


def _the_control_plane_with_node_groups(groups):
    # the creator is the role behind the update's session, left out of the access entries
    assert groups.invokes[:2] == [
        ("aws:index/getCallerIdentity:getCallerIdentity", {}),
        (
            "aws:iam/getSessionContext:getSessionContext",
            {"arn": "arn:aws:sts::123456789012:assumed-role/tfserving-deployer/pulumi-test"},
        ),
    ]
    cluster = groups.one("eks:index:Cluster")
    role = groups.one("aws:iam/role:Role", "tfserving-nodes")
    assert cluster["inputs"] == {
        **_cluster_inputs(groups),
        "version": "1.35",
        "upgradePolicy": {"supportType": "STANDARD"},
        "publicAccessCidrs": ["0.0.0.0/0"],
        "useDefaultVpcCni": True,
        "accessEntries": {
            "nodes": {"principalArn": role["state"]["arn"], "type": "EC2_LINUX"},
            admin_entry_key(ADMIN): _policy_entry(ADMIN, eks_cluster.CLUSTER_ADMIN_POLICY),
            viewer_entry_key(VIEWER): _policy_entry(VIEWER, eks_cluster.CLUSTER_VIEW_POLICY),
        },
    }
    assert cluster["parent"] == groups.one("tfserving:index:EksCluster")["urn"]


def _the_control_plane_in_auto_mode(auto):
    cluster = auto.one("eks:index:Cluster")
    assert cluster["inputs"] == {
        **_cluster_inputs(auto),
        "version": "1.34",
        "upgradePolicy": {"supportType": "EXTENDED"},
        "publicAccessCidrs": ["203.0.113.0/24"],
        "accessEntries": {},
        "autoMode": {
            "enabled": True,
            "createNodeRole": True,
            "computeConfig": {"nodePools": ["general-purpose", "system"]},
        },
    }
    assert auto.of("aws:iam/role:Role") == [], "no node role, no CNI role, no autoscaler"


def _the_provider_is_keyed_by_the_cluster_name_and_its_kubeconfig(groups):
    provider = groups.one("pulumi:providers:kubernetes")
    kubeconfig = groups.outputs["kubeconfigJson"]
    assert provider["inputs"] == {"kubeconfig": kubeconfig, "clusterIdentifier": "tfserving-test"}
    assert provider["parent"] == groups.one("tfserving:index:EksCluster")["urn"]
    assert groups.outputs["provider"] == provider["urn"]
    assert groups.outputs["kubeconfig"] == kubeconfig
    assert groups.outputs["name"] == "tfserving-test"
    registered = groups.registered_outputs("tfserving:index:EksCluster", "tfserving")
    assert registered == {
        "clusterName": "tfserving-test",
        "vpcId": groups.outputs["vpcId"],
        "kubeconfig": {SIG_KEY: SECRET_SIG, "value": kubeconfig},
    }
    autoscaler = groups.registered_outputs(
        "tfserving:index:ClusterAutoscaler", "tfserving-cluster-autoscaler"
    )
    role = groups.one("aws:iam/role:Role", "tfserving-cluster-autoscaler-role")
    assert autoscaler == {"roleArn": role["state"]["arn"]}


def test_without_a_gpu_pool_auto_mode_has_none():
    done = build(ClusterSettings.model_validate({"compute": "autoMode"}), "eu-west-1")
    assert done.of("kubernetes:karpenter.sh/v1:NodePool") == []
    assert len(done.outputs["compute"]) == 2


def test_access_entries_leave_out_the_creator():
    for admins, viewers in (
        ([ADMIN, cloud.CREATOR_ROLE], [VIEWER]),
        ([ADMIN], [cloud.CREATOR_ROLE, VIEWER]),
    ):
        settings = ClusterSettings.model_validate(
            {"adminRoleArns": admins, "viewerRoleArns": viewers}
        )
        entries = {
            k: plain(v) for k, v in access_entries(settings, cloud.CREATOR_ROLE, None).items()
        }
        assert entries == {
            admin_entry_key(ADMIN): _policy_entry(ADMIN, eks_cluster.CLUSTER_ADMIN_POLICY),
            viewer_entry_key(VIEWER): _policy_entry(VIEWER, eks_cluster.CLUSTER_VIEW_POLICY),
        }
    with_nodes = access_entries(ClusterSettings(), cloud.CREATOR_ROLE, "arn:aws:iam::1:role/nodes")
    assert {k: plain(v) for k, v in with_nodes.items()} == {
        "nodes": {"principalArn": "arn:aws:iam::1:role/nodes", "type": "EC2_LINUX"}
    }
    assert admin_entry_key(ADMIN) == "admin-" + hashlib.sha256(ADMIN.encode()).hexdigest()[:8]
    assert viewer_entry_key(ADMIN) == "viewer-" + admin_entry_key(ADMIN).removeprefix("admin-")


# One build per mode, every input checked (a build takes most of a second).


def test_each_compute_mode_builds_its_cluster_input_by_input():
    groups, auto = node_groups_mode(), auto_mode()
    _node_groups_mode_builds_exactly_these(groups)
    _the_vpc_has_tagged_public_and_private_subnets(groups, auto)
    _control_plane_logs_expire_and_exist_before_the_cluster(groups, auto)
    _the_control_plane_with_node_groups(groups)
    _the_provider_is_keyed_by_the_cluster_name_and_its_kubeconfig(groups)
    _the_control_plane_in_auto_mode(auto)
