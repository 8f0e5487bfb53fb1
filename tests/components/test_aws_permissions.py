"""What AWS is asked for, exactly: ECR repositories and their pruning, the Pod Identity roles of
the model server and the Cluster Autoscaler, and what each role may do."""

import json
from typing import Any

import pulumi

from components.cluster_autoscaler import (
    POD_IDENTITY_TRUST,
    ClusterAutoscaler,
    ClusterAutoscalerArgs,
    autoscaler_policy,
    chart_values,
)
from components.model_access import ModelAccess, ModelAccessArgs, read_policy
from components.registry import ImageRegistry, ImageRegistryArgs, lifecycle_policy
from config.cluster import RegistrySettings
from config.model import ModelSettings
from tests.components.mocked import Registered, register

ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ],
}


def s3(name: str, uri: str) -> ModelSettings:
    return ModelSettings.model_validate(
        {"name": name, "source": "s3", "uri": uri, "sizeLimit": "1Gi"}
    )


def test_the_lifecycle_policy_expires_tagged_images_beyond_the_newest():
    assert json.loads(lifecycle_policy(7)) == {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the newest 7 images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    assert lifecycle_policy(7) == json.dumps(json.loads(lifecycle_policy(7)), sort_keys=True)


def _registry(settings: RegistrySettings) -> Registered:
    def build() -> dict[str, Any]:
        registry = ImageRegistry("model", ImageRegistryArgs(settings))
        login = registry.login()
        return {
            "url": registry.repository_url,
            "address": login.address,
            "username": login.username,
            "password": login.password,
        }

    return register(build, {"aws:region": "eu-west-1"})


def test_a_repository_scanned_on_push_immutable_encrypted_and_pruned():
    done = _registry(RegistrySettings.model_validate({"forceDelete": False, "keepImages": 3}))
    component = done.one("tfserving:index:ImageRegistry", "model")
    repository = done.one("aws:ecr/repository:Repository", "model")
    assert repository["parent"] == component["urn"]
    assert repository["inputs"] == {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "AES256"}],
        "forceDelete": False,
    }
    policy = done.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "model")
    assert policy["parent"] == component["urn"]
    assert policy["inputs"]["policy"] == lifecycle_policy(3)
    assert policy["inputs"]["repository"] == repository["state"]["name"]
    url = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/{repository['state']['name']}"
    assert done.outputs == {
        "url": url,
        "address": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
        "username": "AWS",
        "password": "mock-ecr-token",
    }
    assert done.invokes == [
        ("aws:ecr/getAuthorizationToken:getAuthorizationToken", {"registryId": ACCOUNT})
    ]
    assert done.registered_outputs("tfserving:index:ImageRegistry", "model") == {
        "repositoryUrl": url
    }
    assert (
        _registry(RegistrySettings()).one("aws:ecr/repository:Repository")["inputs"]["forceDelete"]
        is True
    )


def test_a_namespaced_repository_logs_in_to_its_registry_host():
    def build() -> dict[str, Any]:
        registry = ImageRegistry("team/model", ImageRegistryArgs(RegistrySettings()))
        return {"url": registry.repository_url, "address": registry.login().address}

    done = register(build, {"aws:region": "eu-west-1"})
    assert done.outputs["url"].startswith(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/model-")
    assert done.outputs["address"] == f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"


def test_the_model_servers_role_reads_exactly_its_models_prefixes():
    models = [s3("a", "s3://models-bucket/team/a"), s3("b", "s3://other/b")]
    assert json.loads(read_policy(models)) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListModel0",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::models-bucket",
                "Condition": {"StringLike": {"s3:prefix": ["team/a/", "team/a/*"]}},
            },
            {
                "Sid": "ReadModel0",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::models-bucket/team/a/*",
            },
            {
                "Sid": "ListModel1",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::other",
                "Condition": {"StringLike": {"s3:prefix": ["b/", "b/*"]}},
            },
            {
                "Sid": "ReadModel1",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::other/b/*",
            },
        ],
    }
    assert read_policy(models) == json.dumps(json.loads(read_policy(models)), sort_keys=True)


def test_model_access_is_a_pod_identity_role_for_one_service_account():
    models = [s3("a", "s3://bucket/a")]

    def build() -> dict[str, Any]:
        before = pulumi.CustomResource("test:index:Nodes", "nodes")
        access = ModelAccess(
            "models",
            ModelAccessArgs(
                cluster_name="tfserving-test",
                namespace="ns",
                service_account="server",
                models=models,
                depends_on=[before],
            ),
        )
        return {"association": access.association.urn}

    done = register(build)
    component = done.one("tfserving:index:ModelAccess", "models")
    role = done.one("aws:iam/role:Role", "models-role")
    assert role["parent"] == component["urn"]
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == TRUST
    policy = done.one("aws:iam/rolePolicy:RolePolicy", "models-read")
    assert policy["parent"] == role["urn"]
    assert policy["inputs"] == {"role": "models-role-id", "policy": read_policy(models)}
    association = done.one(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation", "models-pod-identity"
    )
    assert association["parent"] == component["urn"]
    assert association["inputs"] == {
        "clusterName": "tfserving-test",
        "namespace": "ns",
        "serviceAccount": "server",
        "roleArn": role["state"]["arn"],
    }
    assert set(association["dependencies"]) >= {policy["urn"], done.urn("nodes")}
    assert done.outputs["association"] == association["urn"]
    assert done.registered_outputs("tfserving:index:ModelAccess", "models") == {
        "roleArn": role["state"]["arn"]
    }


def test_the_autoscaler_may_resize_only_this_clusters_groups():
    assert json.loads(autoscaler_policy("tfserving-eks")) == {
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
                "Condition": {
                    "Null": {"aws:ResourceTag/k8s.io/cluster-autoscaler/tfserving-eks": "false"}
                },
            },
        ],
    }
    policy = autoscaler_policy("c")
    assert policy == json.dumps(json.loads(policy), sort_keys=True)


CHART_VALUES = {
    "cloudProvider": "aws",
    "autoDiscovery": {"clusterName": "tfserving-eks"},
    "image": {"tag": "v1.35.2"},
    "rbac": {"serviceAccount": {"create": True, "name": "cluster-autoscaler"}},
    "extraArgs": {
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


def test_the_autoscaler_chart_values():
    assert chart_values("tfserving-eks", None, "v1.35.2") == CHART_VALUES
    assert chart_values("tfserving-eks", "eu-west-1", "v1.35.2") == {
        **CHART_VALUES,
        "awsRegion": "eu-west-1",
    }
    assert POD_IDENTITY_TRUST == TRUST


def test_the_autoscaler_gets_its_credentials_before_it_starts():
    def build() -> None:
        provider = pulumi.ProviderResource("kubernetes", "k8s")
        nodes = pulumi.CustomResource("test:index:Nodes", "nodes")
        ClusterAutoscaler(
            "ca",
            ClusterAutoscalerArgs(
                cluster_name="tfserving-eks",
                region="eu-west-1",
                image_tag="v1.35.2",
                provider=provider,  # type: ignore[arg-type]
                depends_on=[nodes],
            ),
        )

    done = register(build)
    component = done.one("tfserving:index:ClusterAutoscaler", "ca")
    role = done.one("aws:iam/role:Role", "ca-role")
    assert role["parent"] == component["urn"]
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == TRUST
    policy = done.one("aws:iam/rolePolicy:RolePolicy", "ca-policy")
    assert policy["parent"] == role["urn"]
    assert policy["inputs"]["policy"] == autoscaler_policy("tfserving-eks")
    association = done.one(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation", "ca-pod-identity"
    )
    assert association["parent"] == component["urn"]
    assert association["inputs"] == {
        "clusterName": "tfserving-eks",
        "namespace": "kube-system",
        "serviceAccount": "cluster-autoscaler",
        "roleArn": role["state"]["arn"],
    }
    assert done.urn("nodes") in association["dependencies"]
    chart = done.one("kubernetes:helm.sh/v4:Chart", "ca-chart")
    assert chart["parent"] == component["urn"]
    assert chart["provider"].startswith(done.urn("k8s") + "::")
    assert chart["inputs"] == {
        "chart": "cluster-autoscaler",
        "version": "9.59.0",
        "repositoryOpts": {"repo": "https://kubernetes.github.io/autoscaler"},
        "namespace": "kube-system",
        "values": {**CHART_VALUES, "awsRegion": "eu-west-1"},
    }
    assert set(chart["dependencies"]) >= {policy["urn"], association["urn"], done.urn("nodes")}
    assert done.registered_outputs("tfserving:index:ClusterAutoscaler", "ca") == {
        "roleArn": role["state"]["arn"]
    }
