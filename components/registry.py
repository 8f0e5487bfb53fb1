"""An ECR repository for one of our images, and the login that pushes to it."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.container_image import RegistryLogin
from config.cluster import RegistrySettings


def lifecycle_policy(keep_images: int) -> str:
    """Expire tagged images beyond the newest `keep_images`.

    Tagged only: the untagged manifests a build pushes alongside (e.g. provenance attestations)
    belong to a tagged image index and must not be counted or expired on their own.
    """
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the newest {keep_images} images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class ImageRegistryArgs:
    settings: RegistrySettings


class ImageRegistry(pulumi.ComponentResource):
    """A private ECR repository: scanned on push, immutable tags, encrypted, pruned."""

    repository: aws.ecr.Repository
    repository_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ImageRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            name,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            # Our tags are content hashes: a tag never has to move, so nothing may move it.
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            force_delete=args.settings.force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name,
            repository=self.repository.name,
            policy=lifecycle_policy(args.settings.keep_images),
            opts=child,
        )
        self.repository_url = self.repository.repository_url
        self.register_outputs({"repositoryUrl": self.repository_url})

    def login(self) -> RegistryLogin:
        """Push credentials from an ECR authorisation token (valid 12 hours, fetched each run)."""
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return RegistryLogin(
            address=self.repository_url.apply(lambda url: url.split("/", 1)[0]),
            username=token.user_name,
            password=token.password,  # ContainerImage keeps it secret
        )
