"""Read access to the S3 models, for the model server's pods only (EKS Pod Identity).

A role that EKS Pod Identity hands to one service account, allowed to list and read the models'
prefixes and nothing else: `s3:ListBucket` on each bucket limited to the prefix, `s3:GetObject`
on the objects under it (docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html for the
trust policy; the prefix condition is IAM's documented `s3:prefix` key).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cluster_autoscaler import POD_IDENTITY_TRUST
from config.model import ModelSettings


def read_policy(models: Sequence[ModelSettings]) -> str:
    """List and read exactly the models' prefixes (one statement pair per model)."""
    statements = []
    for index, model in enumerate(models):
        bucket, prefix = model.bucket_and_prefix
        statements += [
            {
                "Sid": f"ListModel{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/", f"{prefix}/*"]}},
            },
            {
                "Sid": f"ReadModel{index}",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


@dataclass(frozen=True)
class ModelAccessArgs:
    cluster_name: str
    namespace: str
    service_account: str
    models: Sequence[ModelSettings]  # the s3 ones
    depends_on: Sequence[pulumi.Resource] = ()


class ModelAccess(pulumi.ComponentResource):
    """The role, its read-only policy, and its association with the model server's account."""

    association: aws.eks.PodIdentityAssociation

    def __init__(
        self, name: str, args: ModelAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ModelAccess", name, None, opts)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(POD_IDENTITY_TRUST),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-read",
            role=role.id,
            policy=read_policy(args.models),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *args.depends_on]),
        )
        self.register_outputs({"roleArn": role.arn})
