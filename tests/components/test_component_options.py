"""Every component honours the options it is given: its parent, and the provider its Kubernetes
objects inherit (the program hands the target's cluster provider to ModelServer and Gateway)."""

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.container_image import ContainerImage, ContainerImageArgs, ImageBuild
from components.eks_cluster import EksCluster, EksClusterArgs
from components.gateway import Gateway, GatewayArgs
from components.model_access import ModelAccess, ModelAccessArgs
from components.model_server import ModelServer, ModelServerArgs
from components.registry import ImageRegistry, ImageRegistryArgs
from config.cluster import ClusterSettings, RegistrySettings
from config.gateway import GatewaySettings
from config.model import ModelSettings
from config.service import ModelServiceSettings
from config.workload import AutoscalingSettings, ServerSettings
from tests.components.mocked import register

COMPONENTS = {
    "tfserving:index:ModelServer": "server",
    "tfserving:index:Gateway": "gateway",
    "tfserving:index:EksCluster": "cluster",
    "tfserving:index:ClusterAutoscaler": "autoscaler",
    "tfserving:index:ImageRegistry": "registry",
    "tfserving:index:ContainerImage": "image",
    "tfserving:index:ModelAccess": "access",
}


def test_components_sit_under_their_parent_and_pass_the_provider_on(tmp_path: Path):
    model = ModelSettings.model_validate(
        {"name": "m", "source": "s3", "uri": "s3://bucket/p/m", "sizeLimit": "1Gi"}
    )

    def build() -> dict[str, Any]:
        outer = pulumi.ComponentResource("test:index:Outer", "outer")
        provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        on_cluster = pulumi.ResourceOptions(parent=outer, provider=provider)
        under = pulumi.ResourceOptions(parent=outer)
        ModelServer(
            "server",
            ModelServerArgs(
                namespace="ns",
                models=[model],
                server=ServerSettings.model_validate(
                    {
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi"},
                            "limits": {"cpu": "1", "memory": "1Gi"},
                        }
                    }
                ),
                service=ModelServiceSettings(),
                autoscaling=AutoscalingSettings(),
            ),
            opts=on_cluster,
        )
        Gateway(
            "gateway",
            GatewayArgs(
                namespace="ns",
                settings=GatewaySettings.model_validate({"enabled": True}),
                model_name="m",
                tf_serving_target="dns:///x:8500",
                image="gw:1",
                version="1",
            ),
            opts=on_cluster,
        )
        EksCluster(
            "cluster",
            EksClusterArgs("c", ClusterSettings.model_validate({"compute": "autoMode"})),
            opts=under,
        )
        ClusterAutoscaler(
            "autoscaler",
            ClusterAutoscalerArgs(
                cluster_name="c", region=None, image_tag="v1", provider=provider, depends_on=[]
            ),
            opts=under,
        )
        ImageRegistry("registry", ImageRegistryArgs(RegistrySettings()), opts=under)
        build = ImageBuild(context=tmp_path, dockerfile_inline="FROM x:1\n")
        ContainerImage("image", ContainerImageArgs(repository="r", build=build), opts=under)
        ModelAccess(
            "access",
            ModelAccessArgs(cluster_name="c", namespace="ns", service_account="sa", models=[model]),
            opts=under,
        )
        return {"outer": outer.urn, "provider": provider.urn}

    done = register(build)
    for type_, name in COMPONENTS.items():
        assert done.one(type_, name)["parent"] == done.outputs["outer"], type_
    for type_, name in (
        ("tfserving:index:ModelServer", "server"),
        ("tfserving:index:Gateway", "gateway"),
    ):
        urn = done.one(type_, name)["urn"]
        children = [r for r in done.records if r["parent"] == urn]
        assert children, name
        for child in children:
            assert child["provider"].startswith(done.outputs["provider"] + "::"), child["name"]


def test_data_sources_are_asked_through_the_components_own_aws_provider():
    def build() -> dict[str, Any]:
        account = aws.Provider("account", region="eu-west-1")
        mine = pulumi.ResourceOptions(providers={"aws": account})
        settings = ClusterSettings.model_validate({"nodeGroups": [{"name": "cpu"}]})
        EksCluster("cluster", EksClusterArgs("c", settings), opts=mine)
        ImageRegistry("registry", ImageRegistryArgs(RegistrySettings()), opts=mine).login()
        return {"account": account.urn}

    done = register(build)
    assert sorted(token for token, _ in done.invokes) == [
        "aws:ecr/getAuthorizationToken:getAuthorizationToken",
        "aws:eks/getAddonVersion:getAddonVersion",
        "aws:eks/getAddonVersion:getAddonVersion",
        "aws:eks/getAddonVersion:getAddonVersion",
        "aws:iam/getSessionContext:getSessionContext",
        "aws:index/getCallerIdentity:getCallerIdentity",
    ]
    for provider in done.invoke_providers:
        assert provider.startswith(done.outputs["account"] + "::"), provider
