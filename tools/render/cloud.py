"""Outputs a real provider would compute, for the offline render (scripts/render.py).

Under Pulumi's mock runtime a resource's outputs are its inputs plus what is returned here, and a
remote component (awsx VPC, EKS cluster, node groups) is one opaque resource with no children, so
its outputs must be supplied. Values are fake but shaped like AWS's, and deterministic: derived
from the stack, type and logical name, so renders are identical between runs.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
# What `aws eks describe-addon-versions --addon-name metrics-server` lists for recent Kubernetes
# versions; only an example value here, the real program asks EKS for its default.
METRICS_SERVER_VERSION = "v0.8.1-eksbuild.5"

# (mock args, stack) -> outputs; args are MockResourceArgs (.inputs) or MockCallArgs (.args).
CuratedOutputs = Callable[[Any, str], dict[str, Any]]


def fake_id(*parts: object, length: int = 17) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length]


def region() -> str:
    return pulumi.Config("aws").get("region") or DEFAULT_REGION


def _vpc(args: Any, stack: str) -> dict[str, Any]:
    zones = int(args.inputs.get("numberOfAvailabilityZones") or 3)

    def subnets(kind: str) -> list[str]:
        return [f"subnet-{fake_id(stack, args.name, kind, zone)}" for zone in range(zones)]

    return {
        "vpcId": f"vpc-{fake_id(stack, args.name)}",
        "publicSubnetIds": subnets("public"),
        "privateSubnetIds": subnets("private"),
        "isolatedSubnetIds": [],
        # Replaces the echoed input (a strategy object), which cannot be read as a list of gateways.
        "natGateways": [],
    }


def _eks_cluster(args: Any, stack: str) -> dict[str, Any]:
    suffix = fake_id(stack, args.name, length=7)
    name = args.inputs.get("name") or f"{args.name}-eksCluster-{suffix}"
    endpoint = f"https://{fake_id(stack, name, length=32).upper()}.gr7.{region()}.eks.amazonaws.com"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"server": endpoint, "certificate-authority-data": "LS0tLS1CRUdJTg=="},
            }
        ],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "current-context": "aws",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", name, "--output", "json"],
                    }
                },
            }
        ],
    }
    oidc_issuer = f"oidc.eks.{region()}.amazonaws.com/id/{fake_id(stack, name, 'oidc', length=32)}"
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "clusterSecurityGroupId": f"sg-{fake_id(stack, name, 'cluster')}",
        "nodeSecurityGroupId": f"sg-{fake_id(stack, name, 'nodes')}",
        "oidcIssuer": oidc_issuer,
        "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc_issuer}",
    }


def _without_resource_inputs(*keys: str) -> CuratedOutputs:
    """Blank echoed inputs that hold resources: the SDK would try to look those up again."""

    def outputs(args: Any, stack: str) -> dict[str, Any]:
        return dict.fromkeys(keys)

    return outputs


def _iam_role(args: Any, stack: str) -> dict[str, Any]:
    name = args.inputs.get("name") or f"{args.name}-{fake_id(stack, args.name, length=7)}"
    return {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}


def _launch_template(args: Any, stack: str) -> dict[str, Any]:
    template = f"lt-{fake_id(stack, args.name)}"
    return {
        "latestVersion": 1,
        "arn": f"arn:aws:ec2:{region()}:{ACCOUNT}:launch-template/{template}",
    }


def _ecr_repository(args: Any, stack: str) -> dict[str, Any]:
    name = args.inputs.get("name") or f"{args.name}-{fake_id(stack, args.name, length=7)}"
    return {
        "name": name,
        "registryId": ACCOUNT,
        "arn": f"arn:aws:ecr:{region()}:{ACCOUNT}:repository/{name}",
        "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region()}.amazonaws.com/{name}",
    }


def _docker_image(args: Any, stack: str) -> dict[str, Any]:
    tags = args.inputs.get("tags") or []
    digest = "sha256:" + hashlib.sha256(json.dumps(tags).encode()).hexdigest()
    pushed = bool(args.inputs.get("push"))
    ref = f"{tags[0]}@{digest}" if pushed and tags else (tags[0] if tags else "")
    return {"digest": digest if pushed else "", "ref": ref, "contextHash": fake_id(tags, length=64)}


def _service(args: Any, stack: str) -> dict[str, Any]:
    spec = args.inputs.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return {}
    # The shape of an NLB's DNS name; pulumi-kubernetes waits for it before reporting success.
    host = f"{args.name}-{fake_id(stack, args.name, length=16)}.elb.{region()}.amazonaws.com"
    return {"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}}


def _ecr_authorization_token(args: Any, stack: str) -> dict[str, Any]:
    registry = args.args.get("registryId") or ACCOUNT
    return {
        "id": region(),
        "registryId": registry,
        "userName": "AWS",
        "password": "mock-ecr-token",
        "authorizationToken": "QVdTOm1vY2stZWNyLXRva2Vu",  # base64("AWS:mock-ecr-token")
        "proxyEndpoint": f"https://{registry}.dkr.ecr.{region()}.amazonaws.com",
        "expiresAt": "2030-01-01T12:00:00Z",
    }


def _addon_version(args: Any, stack: str) -> dict[str, Any]:
    return {
        "id": args.args.get("addonName"),
        "addonName": args.args.get("addonName"),
        "kubernetesVersion": args.args.get("kubernetesVersion"),
        "mostRecent": bool(args.args.get("mostRecent")),
        "version": METRICS_SERVER_VERSION,
    }


CURATED: dict[str, CuratedOutputs] = {
    "awsx:ec2:Vpc": _vpc,
    "eks:index:Cluster": _eks_cluster,
    "eks:index:ManagedNodeGroup": _without_resource_inputs("cluster", "nodeRole"),
    "eks:index:Addon": _without_resource_inputs("cluster"),
    "aws:iam/role:Role": _iam_role,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:ecr/repository:Repository": _ecr_repository,
    "docker-build:index:Image": _docker_image,
    "kubernetes:core/v1:Service": _service,
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": _ecr_authorization_token,
    "aws:eks/getAddonVersion:getAddonVersion": _addon_version,
}
