"""The EKS cluster component built in its two compute modes, for the tests of its inputs."""

from typing import Any

from components.eks_cluster import EksCluster, EksClusterArgs
from config.cluster import ClusterSettings, GpuNodePoolSettings
from tests.components.mocked import Registered, register
from tools.render import cloud

ADMIN = "arn:aws:iam::111122223333:role/admin"
VIEWER = "arn:aws:iam::111122223333:role/viewer"
GPU_GROUP = {"name": "gpu", "gpu": True, "instanceTypes": ["g5.xlarge"], "minSize": 0}
PREFIX = "urn:pulumi:test::tfserving::tfserving:index:EksCluster$"
IMDS = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
OVERWRITE = {"resolveConflictsOnCreate": "OVERWRITE", "resolveConflictsOnUpdate": "OVERWRITE"}


def build(
    settings: ClusterSettings, region: str | None, pool: GpuNodePoolSettings | None = None
) -> Registered:
    def build() -> dict[str, Any]:
        cluster = EksCluster(
            "tfserving",
            EksClusterArgs("tfserving-test", settings, region=region, gpu_node_pool=pool),
        )
        return {
            "name": cluster.cluster_name,
            "compute": [r.urn for r in cluster.compute],
            "groups": [g.urn for g in cluster.node_groups],
            "metrics": cluster.metrics_server.urn,
            "provider": cluster.provider.urn,
            "kubeconfig": cluster.kubeconfig,
            "vpc": cluster.vpc.urn,
            "cluster": cluster.cluster.urn,
            "vpcId": cluster.vpc.vpc_id,
            "publicSubnetIds": cluster.vpc.public_subnet_ids,
            "privateSubnetIds": cluster.vpc.private_subnet_ids,
            "kubeconfigJson": cluster.cluster.kubeconfig_json,
            "oidcIssuer": cluster.cluster.oidc_issuer,
            "oidcProviderArn": cluster.cluster.oidc_provider_arn,
        }

    return register(build, {"aws:region": region} if region else {})


def node_groups_mode() -> Registered:
    settings = ClusterSettings.model_validate(
        {
            "nodeGroups": [{"name": "cpu", "diskSize": 40}, {"name": "small"}, GPU_GROUP],
            "adminRoleArns": [ADMIN, cloud.CREATOR_ROLE],
            "viewerRoleArns": [VIEWER],
            "addonVersions": {"vpc-cni": "v1.20.1-eksbuild.3"},
        }
    )
    return build(settings, "eu-west-1")


def auto_mode() -> Registered:
    settings = ClusterSettings.model_validate(
        {
            "compute": "autoMode",
            "version": "1.34",
            "upgradePolicy": "EXTENDED",
            "natGateways": "onePerAz",
            "availabilityZones": 3,
            "logRetentionDays": 7,
            "publicAccessCidrs": ["203.0.113.0/24"],
        }
    )
    return build(settings, None, GpuNodePoolSettings.model_validate({"maxGpus": 2}))
