"""The EKS cluster component as rendered from the real program (eks stack, curated mock outputs)."""

import json
from typing import Any

import pytest
from pulumi.runtime.sync_await import _sync_await

from components.eks_cluster import (
    CLUSTER_ADMIN_POLICY,
    EksCluster,
    EksClusterArgs,
    admin_entry_key,
)
from config.cluster import ClusterSettings
from tests.conftest import PROJECT_ROOT, one_resource, resources_of
from tools.render import Rendered, render_stack, run_under_mocks
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
    assert inputs["version"] == "1.34"
    assert inputs["authenticationMode"] == "API"
    assert inputs["createOidcProvider"] is True
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert inputs["vpcId"].startswith("vpc-")
    assert one_resource(eks, VPC)["urn"] in cluster["dependencies"]


def test_nodes_are_private_and_without_public_addresses(eks):
    cluster = _inputs(eks, EKS)
    private, public = cluster["privateSubnetIds"], cluster["publicSubnetIds"]
    assert private and public and not set(private) & set(public)
    assert cluster["nodeAssociatePublicIpAddress"] is False
    groups = resources_of(eks, NODE_GROUP)
    assert groups
    for group in groups:
        assert group["inputs"]["subnetIds"] == private


def test_nodes_require_imdsv2_out_of_reach_of_pods(eks):
    template = one_resource(eks, LAUNCH_TEMPLATE)
    assert template["inputs"]["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    for group in resources_of(eks, NODE_GROUP):
        assert template["urn"] in group["dependencies"]
        assert group["inputs"]["launchTemplate"]["version"] == "1"
        assert "enableImdSv2" not in group["inputs"], "conflicts with a launch template"


def test_one_node_role_with_the_worker_cni_and_ecr_policies(eks):
    role = one_resource(eks, ROLE)
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    attachments = resources_of(eks, ATTACHMENT)
    assert sorted(a["inputs"]["policyArn"].rsplit("/", 1)[1] for a in attachments) == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
    ]
    assert all(role["urn"] in a["dependencies"] for a in attachments)
    for group in resources_of(eks, NODE_GROUP):
        # Nodes boot only once the role can pull images and wire pod networking.
        assert {a["urn"] for a in attachments} <= set(group["dependencies"])
        assert role["urn"] in group["dependencies"]
        assert "nodeGroupName" not in group["inputs"], "auto-named: replacements can go first"


def test_nodes_role_has_an_ec2_linux_access_entry(eks):
    cluster = one_resource(eks, EKS)
    entry = cluster["inputs"]["accessEntries"]["nodes"]
    assert entry["type"] == "EC2_LINUX"
    assert ":role/tfserving-nodes-" in entry["principalArn"]
    assert "accessPolicies" not in entry, "EC2_LINUX entries take no access policies"
    assert one_resource(eks, ROLE)["urn"] in cluster["dependencies"]


def test_admin_principals_get_cluster_scoped_admin_keyed_by_arn(render_eks):
    rendered = render_eks({CLUSTER: {"adminRoleArns": [ADMIN, OTHER_ADMIN]}})
    entries = _inputs(rendered, EKS)["accessEntries"]
    assert set(entries) == {"nodes", admin_entry_key(ADMIN), admin_entry_key(OTHER_ADMIN)}
    for arn in (ADMIN, OTHER_ADMIN):
        entry = entries[admin_entry_key(arn)]
        assert entry["principalArn"] == arn
        assert entry["type"] == "STANDARD"
        assert entry["accessPolicies"]["admin"] == {
            "policyArn": CLUSTER_ADMIN_POLICY,
            "accessScope": {"type": "cluster"},
        }
    reordered = render_eks({CLUSTER: {"adminRoleArns": [OTHER_ADMIN, ADMIN]}})
    assert _inputs(reordered, EKS)["accessEntries"] == entries


def test_node_group_shape_follows_the_config(render_eks):
    group = {
        "name": "spot",
        "instanceTypes": ["m5.large", "m5a.large"],
        "minSize": 0,
        "desiredSize": 1,
        "maxSize": 3,
        "capacityType": "SPOT",
    }
    inputs = _inputs(render_eks(_with_groups(group)), NODE_GROUP, "tfserving-spot")
    assert inputs["instanceTypes"] == ["m5.large", "m5a.large"]
    assert inputs["capacityType"] == "SPOT"
    assert inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 3}
    assert inputs["version"] == "1.34"
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["labels"] == {"tfserving/node-group": "spot"}
    assert inputs["taints"] == []


def test_gpu_group_runs_the_nvidia_ami_tainted_and_labelled(render_eks):
    sizes = {"minSize": 0, "desiredSize": 1, "maxSize": 2}
    cpu = {"name": "cpu", "instanceTypes": ["m5.large"], **sizes}
    gpu = {"name": "gpu", "instanceTypes": ["g4dn.xlarge"], **sizes, "gpu": True}
    rendered = render_eks(_with_groups(cpu, gpu))
    assert len(resources_of(rendered, NODE_GROUP)) == 2
    gpu_inputs = _inputs(rendered, NODE_GROUP, "tfserving-gpu")
    assert gpu_inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu_inputs["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert gpu_inputs["labels"] == {"tfserving/node-group": "gpu", "nvidia.com/gpu": "true"}
    cpu_inputs = _inputs(rendered, NODE_GROUP, "tfserving-cpu")
    assert cpu_inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert cpu_inputs["taints"] == []
    # One shared role and launch template for both groups.
    assert len(resources_of(rendered, ROLE)) == 1
    assert len(resources_of(rendered, LAUNCH_TEMPLATE)) == 1


def test_metrics_server_is_an_eks_addon_on_the_nodes(eks):
    addon = one_resource(eks, ADDON)
    assert addon["inputs"]["addonName"] == "metrics-server"
    # The version EKS names as default for the pinned Kubernetes version (a curated invoke here).
    assert addon["inputs"]["addonVersion"] == METRICS_SERVER_VERSION
    assert addon["inputs"]["cluster"] == one_resource(eks, EKS)["urn"]
    assert {g["urn"] for g in resources_of(eks, NODE_GROUP)} <= set(addon["dependencies"])


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
