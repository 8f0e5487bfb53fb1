"""A container image built by Pulumi (pulumi-docker-build), for any of our images.

Used for the model image (TF Serving with the SavedModel baked in) and the gateway's image. The
image is tagged with a content hash of its build inputs, so a new model gives a new
tag (and a rolling update) while an unchanged one gives the same tag (and no diff). It is either:

- pushed to a registry (ECR on eks): the Deployment then runs `ref`, the tag pinned to the
  digest that was pushed, so a node can never run a different image under the same tag; or
- loaded into the local Docker daemon (minikube, after `eval $(minikube docker-env)`): the
  Deployment runs the plain tag, which Kubernetes pulls IfNotPresent (the default for any tag but
  `latest`), so the kubelet finds it in the node's daemon and never looks for it in a registry.

Previews do not build (`build_on_preview=False`): a PR preview in CI then needs no Docker daemon
or buildx, and a cold build of a TF Serving image (hundreds of MB) does not slow every preview.
The preview still shows the image as changed whenever the tag (the content hash) changes.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from config.paths import PROJECT_ROOT

PLATFORM = docker_build.Platform.LINUX_AMD64
TAG_LENGTH = 16  # hex characters of the content hash: plenty against collisions
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RegistryLogin:
    """Where to push and the credentials to do it with (e.g. from an ECR authorisation token)."""

    address: pulumi.Input[str]  # registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True)
class ImageBuild:
    """What to build: a context directory and its Dockerfile (exactly one of text or file)."""

    context: Path
    dockerfile_inline: str | None = None
    dockerfile_path: Path | None = None

    def __post_init__(self) -> None:
        if (self.dockerfile_inline is None) == (self.dockerfile_path is None):
            raise ValueError("give exactly one of dockerfile_inline and dockerfile_path")
        if not self.context.is_dir():
            raise ValueError(f"build context {self.context} is not a directory")

    @property
    def dockerfile_text(self) -> str:
        if self.dockerfile_inline is not None:
            return self.dockerfile_inline
        assert self.dockerfile_path is not None
        return self.dockerfile_path.read_text()


@dataclass(frozen=True)
class ContainerImageArgs:
    # "<registry>/<repository>" when pushing, a plain local name otherwise.
    repository: pulumi.Input[str]
    build: ImageBuild
    # None: load into the local Docker daemon instead of pushing.
    registry: RegistryLogin | None = None
    build_on_preview: bool = False


def project_path(path: Path) -> str:
    """A path inside the project relative to it (Pulumi runs programs and providers there).

    An absolute path would differ between checkouts (laptop, CI), and a changed build input makes
    docker-build rebuild and push again under the same tag, which the immutable repository rejects.
    """
    resolved = path.resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix() or "."
    return str(resolved)


# Local byproducts that differ between machines; each context's .dockerignore leaves them out too.
_IGNORED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def context_files(context: Path) -> list[Path]:
    """Every file of a build context that the build sees, in a stable order."""
    return sorted(
        p
        for p in context.rglob("*")
        if p.is_file()
        and p.suffix != ".pyc"
        and not _IGNORED_DIRS.intersection(p.relative_to(context).parts)
    )


def content_tag(dockerfile: str, context: Path) -> str:
    """A hash of what the build reads: the Dockerfile, the target platform and every context file.

    File names (relative, POSIX) and bytes only: not modification times, permissions or where the
    context lives, so the tag is the same on every machine and after a fresh clone. It covers
    the whole context, not only what the Dockerfile copies: docker-build rebuilds when any
    context file changes, and a rebuild must never try to push different bytes under an existing
    tag (the ECR repository's tags are immutable).
    """
    digest = hashlib.sha256()
    for part in (dockerfile, PLATFORM.value):
        digest.update(part.encode())
        digest.update(b"\0")
    for file in context_files(context):
        digest.update(file.relative_to(context).as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:TAG_LENGTH]


class ContainerImage(pulumi.ComponentResource):
    """One image, built for linux/amd64, pushed to a registry or loaded into the local daemon."""

    tag: str
    # What a Pod should run: digest-pinned when pushed, the plain tag when loaded locally.
    ref: pulumi.Output[str]
    repository: pulumi.Output[str]
    image: docker_build.Image

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tfserving:index:ContainerImage", name, None, opts)
        build = args.build
        self.tag = content_tag(build.dockerfile_text, build.context)
        tagged = pulumi.Output.concat(args.repository, ":", self.tag)
        pushed = args.registry is not None
        self.image = docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(location=project_path(build.context)),
            dockerfile=docker_build.DockerfileArgs(
                inline=build.dockerfile_inline,
                location=project_path(build.dockerfile_path) if build.dockerfile_path else None,
            ),
            platforms=[PLATFORM],
            tags=[tagged],
            push=pushed,
            registries=(
                [
                    docker_build.RegistryArgs(
                        address=args.registry.address,
                        username=args.registry.username,
                        password=pulumi.Output.secret(args.registry.password),
                    )
                ]
                if args.registry is not None
                else None
            ),
            # Without a registry the image must land in the daemon the cluster's node uses.
            exports=(
                None
                if pushed
                else [docker_build.ExportArgs(docker=docker_build.ExportDockerArgs())]
            ),
            build_on_preview=args.build_on_preview,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Taken from the resource's outputs (not the local variable) so users wait for the build.
        self.ref = self.image.ref if pushed else self.image.tags.apply(_first_tag)
        self.repository = pulumi.Output.from_input(args.repository)
        self.register_outputs({"tag": self.tag, "ref": self.ref})


def _first_tag(tags: Sequence[str] | None) -> str:
    if not tags:
        raise ValueError("the image has no tag")
    return tags[0]
