"""The EKS cluster component as rendered from the real program (eks stack, curated mock outputs)."""

import json
from typing import Any

import pytest
from pulumi.runtime.sync_await import _sync_await

from components.eks_cluster import (
    CLUSTER_ADMIN_POLICY,
    CLUSTER_VIEW_POLICY,
    EksCluster,
    EksClusterArgs,
    admin_entry_key,
    viewer_entry_key,
)
from config.cluster import ClusterSettings
from tests.conftest import PROJECT_ROOT, one_resource, resources_of
from tools.render import Rendered, cloud, engine, render_stack, run_under_mocks
from tools.render.cloud import METRICS_SERVER_VERSION

CLUSTER = "tfserving:cluster"
VPC = "awsx:ec2:Vpc"
EKS = "eks:index:Cluster"
NODE_GROUP = "eks:index:ManagedNodeGroup"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ADDON = "eks:index:Addon"
K8S_PROVIDER = "pulumi:providers:kubernetes"
ADMIN = "arn:aws:iam::111122223333:role/ci-deployer"
OTHER_ADMIN = "arn:aws:iam::111122223333:user/alice"
VIEWER = "arn:aws:iam::111122223333:role/ci-preview"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture(scope="module")
def eks() -> Rendered:
    return render_stack(PROJECT_ROOT / "Pulumi.eks.yaml")


def _inputs(rendered: Rendered, type_: str, name: str | None = None) -> dict[str, Any]:
    return one_resource(rendered, type_, name)["inputs"]


def _with_groups(*groups: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {CLUSTER: {"nodeGroups": list(groups), **cluster}}


def test_vpc_spans_the_zones_with_load_balancer_tagged_subnets_and_one_nat(eks):
    vpc = _inputs(eks, VPC)
    assert vpc["numberOfAvailabilityZones"] == 2
    assert vpc["natGateways"] == {"strategy": "Single"}
    assert vpc["enableDnsHostnames"] is True and vpc["enableDnsSupport"] is True
    specs = {s["type"]: s for s in vpc["subnetSpecs"]}
    assert set(specs) == {"Public", "Private"}
    assert specs["Public"]["tags"]["kubernetes.io/role/elb"] == "1"
    assert specs["Private"]["tags"]["kubernetes.io/role/internal-elb"] == "1"
    for spec in specs.values():
        assert spec["tags"]["kubernetes.io/cluster/tfserving-eks"] == "shared"


def test_nat_strategy_and_zones_follow_the_config(render_eks):
    rendered = render_eks({CLUSTER: {"natGateways": "onePerAz", "availabilityZones": 3}})
    vpc = _inputs(rendered, VPC)
    assert vpc["natGateways"] == {"strategy": "OnePerAz"}
    assert vpc["numberOfAvailabilityZones"] == 3
    assert len(_inputs(rendered, EKS)["privateSubnetIds"]) == 3


def test_control_plane_is_pinned_logged_api_authenticated_with_oidc(eks):
    cluster = one_resource(eks, EKS)
    inputs = cluster["inputs"]
    assert inputs["name"] == "tfserving-eks"
    assert inputs["version"] == "1.35"
    assert inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    assert inputs["authenticationMode"] == "API"
    assert inputs["createOidcProvider"] is True
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert inputs["vpcId"].startswith("vpc-")
    assert one_resource(eks, VPC)["urn"] in cluster["dependencies"]
    assert "autoMode" not in inputs
    # nodeGroups: pulumi-eks leaves the VPC CNI to us (our add-on, own role, policies on).
    assert inputs["useDefaultVpcCni"] is True


def test_api_endpoint_is_private_and_public_only_to_the_listed_ranges(render_eks):
    inputs = _inputs(render_eks(), EKS)
    assert (inputs["endpointPrivateAccess"], inputs["endpointPublicAccess"]) == (True, True)
    assert inputs["publicAccessCidrs"] == ["0.0.0.0/0"]
    narrowed = render_eks({CLUSTER: {"publicAccessCidrs": ["198.51.100.7/32"]}})
    assert _inputs(narrowed, EKS)["publicAccessCidrs"] == ["198.51.100.7/32"]


def test_upgrade_policy_follows_the_config(render_eks):
    rendered = render_eks({CLUSTER: {"upgradePolicy": "EXTENDED"}})
    assert _inputs(rendered, EKS)["upgradePolicy"] == {"supportType": "EXTENDED"}


def test_control_plane_log_group_is_ours_with_a_retention_before_the_cluster(render_eks):
    rendered = render_eks({CLUSTER: {"logRetentionDays": 7}})
    group = one_resource(rendered, LOG_GROUP)
    assert group["inputs"] == {"name": "/aws/eks/tfserving-eks/cluster", "retentionInDays": 7}
    assert group["urn"] in one_resource(rendered, EKS)["dependencies"]
    default = one_resource(render_eks(), LOG_GROUP)
    assert default["inputs"]["retentionInDays"] == 30


def test_nodes_are_private_and_without_public_addresses(eks):
    cluster = _inputs(eks, EKS)
    private, public = cluster["privateSubnetIds"], cluster["publicSubnetIds"]
    assert private and public and not set(private) & set(public)
    assert cluster["nodeAssociatePublicIpAddress"] is False
    groups = resources_of(eks, NODE_GROUP)
    assert groups
    for group in groups:
        assert group["inputs"]["subnetIds"] == private


def test_nodes_role_has_an_ec2_linux_access_entry(eks):
    cluster = one_resource(eks, EKS)
    entry = cluster["inputs"]["accessEntries"]["nodes"]
    assert entry["type"] == "EC2_LINUX"
    assert ":role/tfserving-nodes-" in entry["principalArn"]
    assert "accessPolicies" not in entry, "EC2_LINUX entries take no access policies"
    node_role = one_resource(eks, ROLE, "tfserving-nodes")
    assert node_role["urn"] in cluster["dependencies"]


def _policy(arn: str, policy: str) -> dict[str, Any]:
    return {
        "principalArn": arn,
        "type": "STANDARD",
        "accessPolicies": {"policy": {"policyArn": policy, "accessScope": {"type": "cluster"}}},
    }


def test_admins_and_viewers_get_cluster_scoped_entries_keyed_by_arn(render_eks):
    rendered = render_eks(
        {CLUSTER: {"adminRoleArns": [ADMIN, OTHER_ADMIN], "viewerRoleArns": [VIEWER]}}
    )
    entries = _inputs(rendered, EKS)["accessEntries"]
    assert set(entries) == {
        "nodes",
        admin_entry_key(ADMIN),
        admin_entry_key(OTHER_ADMIN),
        viewer_entry_key(VIEWER),
    }
    assert entries[admin_entry_key(ADMIN)] == _policy(ADMIN, CLUSTER_ADMIN_POLICY)
    assert entries[admin_entry_key(OTHER_ADMIN)] == _policy(OTHER_ADMIN, CLUSTER_ADMIN_POLICY)
    assert entries[viewer_entry_key(VIEWER)] == _policy(VIEWER, CLUSTER_VIEW_POLICY)
    assert CLUSTER_VIEW_POLICY.endswith(":cluster-access-policy/AmazonEKSViewPolicy")
    reordered = render_eks(
        {CLUSTER: {"adminRoleArns": [OTHER_ADMIN, ADMIN], "viewerRoleArns": [VIEWER]}}
    )
    assert _inputs(reordered, EKS)["accessEntries"] == entries


def test_the_identity_that_creates_the_cluster_gets_no_second_entry(render_eks, monkeypatch):
    # The mocked caller is an assumed-role session of the CI deploy role; EKS already made that
    # role admin, and an entry for it again would fail with ResourceInUseException.
    monkeypatch.setattr(cloud, "CREATOR_ROLE", ADMIN)
    rendered = render_eks(
        {CLUSTER: {"adminRoleArns": [ADMIN, OTHER_ADMIN], "viewerRoleArns": [VIEWER]}}
    )
    entries = _inputs(rendered, EKS)["accessEntries"]
    assert set(entries) == {"nodes", admin_entry_key(OTHER_ADMIN), viewer_entry_key(VIEWER)}
    monkeypatch.setattr(cloud, "CREATOR_ROLE", VIEWER)
    rendered = render_eks({CLUSTER: {"adminRoleArns": [ADMIN], "viewerRoleArns": [VIEWER]}})
    assert set(_inputs(rendered, EKS)["accessEntries"]) == {"nodes", admin_entry_key(ADMIN)}


def test_vpc_cni_runs_on_its_own_role_and_enforces_network_policies(eks):
    addon = _inputs(eks, ADDON, "tfserving-vpc-cni")
    assert addon["addonName"] == "vpc-cni"
    assert addon["configurationValues"] == {"enableNetworkPolicy": "true"}
    role = one_resource(eks, ROLE, "tfserving-vpc-cni")
    assert addon["serviceAccountRoleArn"].startswith(
        f"arn:aws:iam::{cloud.ACCOUNT}:role/tfserving-vpc-cni-"
    )
    (statement,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    issuer = statement["Principal"]["Federated"].split(":oidc-provider/", 1)[1]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:kube-system:aws-node",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    (attachment,) = [a for a in resources_of(eks, ATTACHMENT) if a["parent"] == role["urn"]]
    assert attachment["inputs"]["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    # Nodes boot only once pods can get addresses.
    addon_urn = one_resource(eks, ADDON, "tfserving-vpc-cni")["urn"]
    for group in resources_of(eks, NODE_GROUP):
        assert addon_urn in group["dependencies"]


def test_addon_versions_are_the_newest_for_the_version_or_the_stacks_pin(render_eks):
    rendered = render_eks()
    for name, addon in (
        ("tfserving-metrics-server", "metrics-server"),
        ("tfserving-vpc-cni", "vpc-cni"),
        ("tfserving-pod-identity-agent", "eks-pod-identity-agent"),
    ):
        inputs = _inputs(rendered, ADDON, name)
        assert inputs["addonName"] == addon
        # most_recent=True: never the "default" lookup that fails when EKS flags none.
        assert inputs["addonVersion"] == cloud.ADDON_VERSIONS[addon]
        assert (
            inputs["resolveConflictsOnCreate"] == inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
        )
    pinned = render_eks({CLUSTER: {"addonVersions": {"metrics-server": "v0.7.2-eksbuild.3"}}})
    assert _inputs(pinned, ADDON, "tfserving-metrics-server")["addonVersion"] == "v0.7.2-eksbuild.3"
    assert (
        _inputs(pinned, ADDON, "tfserving-vpc-cni")["addonVersion"]
        == cloud.ADDON_VERSIONS["vpc-cni"]
    )


def test_addon_lookups_ask_for_the_most_recent_version(monkeypatch, render_eks):
    calls: list[dict[str, Any]] = []
    original = cloud.CURATED["aws:eks/getAddonVersion:getAddonVersion"]

    def record(args: Any, stack: str) -> dict[str, Any]:
        calls.append(dict(args.args))
        return original(args, stack)

    monkeypatch.setitem(cloud.CURATED, "aws:eks/getAddonVersion:getAddonVersion", record)
    monkeypatch.setitem(engine.CURATED, "aws:eks/getAddonVersion:getAddonVersion", record)
    render_eks()
    assert sorted(c["addonName"] for c in calls) == [
        "eks-pod-identity-agent",
        "metrics-server",
        "vpc-cni",
    ]
    assert all(c["mostRecent"] is True and c["kubernetesVersion"] == "1.35" for c in calls)


def test_metrics_server_is_an_eks_addon_on_the_nodes(eks):
    addon = one_resource(eks, ADDON, "tfserving-metrics-server")
    assert addon["inputs"]["addonName"] == "metrics-server"
    assert addon["inputs"]["addonVersion"] == METRICS_SERVER_VERSION
    assert addon["inputs"]["cluster"] == one_resource(eks, EKS)["urn"]
    groups = {g["urn"] for g in resources_of(eks, NODE_GROUP)}
    assert groups and groups <= set(addon["dependencies"])


def test_kubernetes_provider_reads_the_cluster_kubeconfig_with_a_stable_identity(eks):
    provider = one_resource(eks, K8S_PROVIDER)
    assert provider["inputs"]["clusterIdentifier"] == "tfserving-eks"
    kubeconfig = json.loads(provider["inputs"]["kubeconfig"])
    assert "tfserving-eks" in kubeconfig["users"][0]["user"]["exec"]["args"]
    assert one_resource(eks, EKS)["urn"] in provider["dependencies"]


def test_cluster_name_is_project_and_stack(render_eks):
    rendered = render_eks()
    assert _inputs(rendered, EKS)["name"] == f"tfserving-{rendered.stack}"
    assert _inputs(rendered, K8S_PROVIDER)["clusterIdentifier"] == f"tfserving-{rendered.stack}"


def test_kubeconfig_output_is_a_secret():
    found: dict[str, Any] = {}

    def program() -> None:
        cluster = EksCluster("t", EksClusterArgs("tfserving-eks", ClusterSettings()))
        found["secret"] = _sync_await(cluster.kubeconfig.is_secret())
        found["value"] = _sync_await(cluster.kubeconfig.future())

    run_under_mocks("eks", {"aws:region": "eu-west-1"}, program)
    assert found["secret"] is True
    assert json.loads(found["value"])["kind"] == "Config"
