"""Outputs a real provider would compute, for the offline render (tools/render).

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
# Who runs the mocked update: a CI role's session, as `aws sts get-caller-identity` shows it.
# Tests change CREATOR_ROLE to check that the creator is left out of the access entries.
CREATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/tfserving-deployer"
# Example add-on versions of the shape `aws eks describe-addon-versions` lists; mock values only,
# the real program asks EKS for the newest version of each for the cluster's Kubernetes version.
ADDON_VERSIONS = {
    "metrics-server": "v0.8.1-eksbuild.5",
    "vpc-cni": "v1.20.4-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.8-eksbuild.2",
}
METRICS_SERVER_VERSION = ADDON_VERSIONS["metrics-server"]

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
    # docker-build documents `ref` for a pushed image (a tag with the pushed digest) and for a
    # tagged image that was not exported (one of its tags); an image loaded into the local
    # daemon is exported, so nothing is promised: the program runs its tag (ContainerImage),
    # and the fake leaves `ref` empty so a render shows it if the program ever relies on it.
    ref = f"{tags[0]}@{digest}" if pushed and tags else ""
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
        "version": ADDON_VERSIONS.get(str(args.args.get("addonName")), "v1.0.0-eksbuild.1"),
    }


def _caller_identity(args: Any, stack: str) -> dict[str, Any]:
    account, role = CREATOR_ROLE.split(":")[4], CREATOR_ROLE.rsplit("/", 1)[-1]
    return {
        "accountId": account,
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/pulumi-{stack}",
        "userId": f"AROA{fake_id(stack, 'caller', length=16).upper()}:pulumi-{stack}",
        "id": account,
    }


def _session_context(args: Any, stack: str) -> dict[str, Any]:
    arn = str(args.args.get("arn") or "")
    if ":assumed-role/" not in arn:  # a user or role ARN comes back as itself
        return {"arn": arn, "issuerArn": arn, "issuerId": "", "issuerName": "", "sessionName": ""}
    account = arn.split(":")[4]
    role, session = arn.split(":assumed-role/", 1)[1].split("/", 1)
    return {
        "arn": arn,
        "issuerArn": f"arn:aws:iam::{account}:role/{role}",
        "issuerId": f"AROA{fake_id(role, length=16).upper()}",
        "issuerName": role,
        "sessionName": session,
    }


# Instance specs as AWS publishes them, by family and size, for the preview-time capacity check
# (aws:ec2/getInstanceType). Memory per vCPU: m 4 GiB, c 2 GiB, r 8 GiB, t 2 GiB (medium/large).
_MEMORY_PER_VCPU = {"m": 4, "c": 2, "r": 8, "t": 2}
_VCPUS = {"medium": 2, "large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32,
          "12xlarge": 48, "16xlarge": 64, "24xlarge": 96, "48xlarge": 192}  # fmt: skip
# (network interfaces, IPv4 addresses each) by size, as for m5 (EKS's eni-max-pods.txt).
_ENIS = {"medium": (3, 6), "large": (3, 10), "xlarge": (4, 15), "2xlarge": (4, 15),
         "4xlarge": (8, 30), "8xlarge": (8, 30), "12xlarge": (8, 30), "16xlarge": (15, 50),
         "24xlarge": (15, 50), "48xlarge": (15, 50)}  # fmt: skip
# NVIDIA families: (GPUs at xlarge..8xlarge, 12xlarge, 48xlarge), memory per vCPU 4 GiB.
_GPU_FAMILIES = {"g4dn": "T4", "g5": "A10G", "g6": "L4", "g6e": "L40S"}


def _instance_type(args: Any, stack: str) -> dict[str, Any]:
    name = str(args.args.get("instanceType"))
    family, size = name.split(".", 1)
    vcpus = _VCPUS.get(size, 2)
    enis, ips = _ENIS.get(size, (3, 10))
    gpus: list[dict[str, Any]] = []
    if family in _GPU_FAMILIES:
        count = 8 if size == "48xlarge" else 4 if size == "12xlarge" else 1
        gpus = [{"count": count, "manufacturer": "NVIDIA", "name": _GPU_FAMILIES[family],
                 "memorySize": 24576}]  # fmt: skip
        memory = vcpus * 4 * 1024
    else:
        memory = vcpus * _MEMORY_PER_VCPU.get(family[:1], 4) * 1024
    return {
        "id": name,
        "instanceType": name,
        "defaultVcpus": vcpus,
        "memorySize": memory,
        "gpuses": gpus,
        "maximumNetworkInterfaces": enis,
        "maximumIpv4AddressesPerInterface": ips,
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
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:iam/getSessionContext:getSessionContext": _session_context,
    "aws:ec2/getInstanceType:getInstanceType": _instance_type,
}
