"""The ECR repository and its lifecycle policy, as rendered for the eks stack."""

import json

import pytest

from components.registry import lifecycle_policy
from tests.conftest import PROJECT_ROOT, one_resource
from tools.render import Rendered, render_stack
from tools.render.engine import REDACTED

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
IMAGE = "docker-build:index:Image"


@pytest.fixture(scope="module")
def eks() -> Rendered:
    return render_stack(PROJECT_ROOT / "Pulumi.eks.yaml")


def test_repository_scans_on_push_with_immutable_encrypted_tags(eks):
    inputs = one_resource(eks, REPOSITORY)["inputs"]
    assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert inputs["imageTagMutability"] == "IMMUTABLE"
    assert inputs["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert inputs["forceDelete"] is True


def test_force_delete_follows_the_config(render_eks):
    rendered = render_eks({"tfserving:registry": {"forceDelete": False}})
    assert one_resource(rendered, REPOSITORY)["inputs"]["forceDelete"] is False


def test_lifecycle_policy_keeps_the_configured_number_of_images(render_eks):
    rendered = render_eks({"tfserving:registry": {"keepImages": 3}})
    policy = one_resource(rendered, LIFECYCLE)
    assert one_resource(rendered, REPOSITORY)["urn"] in policy["dependencies"]
    (rule,) = json.loads(policy["inputs"]["policy"])["rules"]
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == 3
    assert rule["action"] == {"type": "expire"}


def test_lifecycle_policy_counts_tagged_images_only():
    (rule,) = json.loads(lifecycle_policy(7))["rules"]
    assert rule["selection"]["tagStatus"] == "tagged"
    assert rule["selection"]["tagPatternList"] == ["*"]
    assert rule["selection"]["countNumber"] == 7


def test_image_is_pushed_with_an_ecr_token_kept_secret(eks):
    # A Pulumi secret: the render writes it redacted, field by field.
    (login,) = one_resource(eks, IMAGE)["inputs"]["registries"]
    assert login == {"address": REDACTED, "username": REDACTED, "password": REDACTED}
    revealed = render_stack(PROJECT_ROOT / "Pulumi.eks.yaml", reveal_secrets=True)
    image = one_resource(revealed, IMAGE)["inputs"]
    (login,) = image["registries"]
    assert login["username"] == "AWS"
    assert login["password"] == "mock-ecr-token"  # the curated token, wired through
    (tag,) = image["tags"]
    assert tag.startswith(login["address"] + "/"), "pushed to the repository's own registry"
    assert image["push"] is True


def test_no_repository_without_an_image_to_push(render_eks):
    rendered = render_eks({"tfserving:model": {"source": "configmap"}})
    assert not [r for r in rendered.resources if r["type"] in (REPOSITORY, IMAGE)]
    assert "repositoryUrl" not in rendered.outputs and "imageRef" not in rendered.outputs
